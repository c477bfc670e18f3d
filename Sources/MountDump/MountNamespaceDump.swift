import Foundation
import Engine
import LinuxKernel
import Images
import ProcFS

/// The mount namespace of a container, across dump and restore, in CRIU's images:
/// `mountpoints-<mnt ns id>.img` (one mnt_entry per mount) and a
/// `tmpfs-dev-<root_dev>.tar.gz.img` per tmpfs. A tree that shares our own mount
/// namespace (a host process tree) writes nothing and restores into ours.
///
///     options.extensions.append(MountNamespaceDump())   // DumpOptions and RestoreOptions
public struct MountNamespaceDump: DumpExtension, RestoreExtension {
    public init() {}

    public func dump(_ session: DumpSession) throws {
        let tree = session.tree, options = session.options, log = session.log
        if options.emptyNamespaces & CloneFlags.newNS.rawValue != 0 {
            log.info("mnt: the mount namespace is to be made empty at restore; not dumped")
            return
        }
        let others = tree.processes.filter { !$0.isZombie && $0.pid != tree.root.pid }.map(\.pid)
        try Self.dump(rootPid: tree.root.pid, images: session.images, externalMounts: options.externalMounts,
                      autoExternal: options.autoExternalMounts,
                      otherPids: others, log: log)
    }

    public func namespaceFlags(_ session: RestoreSession) throws -> UInt64 {
        try namespaceFlags(images: session.images)
    }

    public func namespaceFlags(images: ImageDirectory) throws -> UInt64 {
        try Self.imageName(in: images) == nil ? 0 : CloneFlags.newNS.rawValue
    }

    public func setUp(_ session: RestoreSession) throws {
        try Self.restore(rootPid: session.rootPid, images: session.images, root: session.options.root,
                         externalMounts: session.options.externalMounts,
                         autoExternal: session.options.autoExternalMounts, ptys: session.ptys, log: session.log)
    }

    /// Everything is built inside the restored tree's own mount namespace, which dies with
    /// its tasks; the host's mounts are never touched, so there is nothing to undo.
    public func rollBack(_ session: RestoreSession) {
        session.log.info("mnt: nothing to undo: the mount tree was built only in the restored tree's namespace")
    }

    /// The mountpoints image of the root task's namespace: the only one, or the one the
    /// root task's ids name when there are several.
    static func imageName(in images: ImageDirectory) throws -> ImageName? {
        let found = images.list(.mountpoints)
        if found.count <= 1 { return found.first }
        if let id = try images.rootTaskIds()?[namespace: .mnt], found.contains(.mountpoints(id)) {
            return .mountpoints(id)
        }
        throw CheckpointError(.unsupported, "images in \(images.path) hold \(found.count) mount namespaces (\(found.map(\.fileName).joined(separator: ", "))); only the root task's is restored and its ids image names none of them")
    }
}
