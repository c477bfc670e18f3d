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
    public static let cloneNewNS: UInt64 = 0x0002_0000

    public init() {}

    public func dump(tree: FrozenTree, images: ImageDirectory, options: DumpOptions, log: Log) throws {
        if options.emptyNamespaces & Self.cloneNewNS != 0 {
            log.info("mnt: the mount namespace is to be made empty at restore; not dumped")
            return
        }
        let others = tree.processes.filter { !$0.isZombie && $0.pid != tree.root.pid }.map(\.pid)
        try Self.dump(rootPid: tree.root.pid, images: images, externalMounts: options.externalMounts,
                      autoExternal: options.autoExternalMounts, otherPids: others, log: log)
    }

    public func namespaceFlags(images: ImageDirectory) throws -> UInt64 {
        try Self.imageName(in: images) == nil ? 0 : Self.cloneNewNS
    }

    public func setUp(rootPid: Int32, images: ImageDirectory, options: RestoreOptions, log: Log) throws {
        try Self.restore(rootPid: rootPid, images: images, root: options.root,
                         externalMounts: options.externalMounts, autoExternal: options.autoExternalMounts, log: log)
    }

    /// Everything is built inside the restored tree's own mount namespace, which dies with
    /// its tasks; the host's mounts are never touched, so there is nothing to undo.
    public func rollBack(images: ImageDirectory, options: RestoreOptions, log: Log) {
        log.info("mnt: nothing to undo: the mount tree was built only in the restored tree's namespace")
    }

    /// The mountpoints image of the root task's namespace: the only one, or the one the
    /// inventory's root ids name when there are several.
    static func imageName(in images: ImageDirectory) throws -> ImageName? {
        let found = images.list(.mountpoints)
        if found.count <= 1 { return found.first }
        if images.exists(.inventory),
           let inventory = try? images.readOne(.inventory, as: InventoryEntry.self),
           inventory.hasRootIds, found.contains(.mountpoints(inventory.rootIds.mntNsID)) {
            return .mountpoints(inventory.rootIds.mntNsID)
        }
        throw CheckpointError(.unsupported, "images in \(images.path) hold \(found.count) mount namespaces (\(found.map(\.fileName).joined(separator: ", "))); only the root task's is restored and the inventory does not name it")
    }

    /// The inode of /proc/PID/ns/KIND, to tell namespaces apart.
    static func namespaceInode(_ pid: Int32, _ kind: String) throws -> UInt64 {
        var st = stat()
        if stat("/proc/\(pid)/ns/\(kind)", &st) != 0 { throw CheckpointError.errno("stat /proc/\(pid)/ns/\(kind)") }
        return UInt64(st.st_ino)
    }
}
