import Foundation
import Engine
import LinuxKernel
import Images
import ProcFS

/// Dumps and restores the uts, ipc, net and time namespaces a tree owns (those of its root
/// task that are not the dumper's own), in CRIU's images. The cgroup namespace is part of
/// cgroup.img (CgroupDump records its root as cgns_prefix); mnt, pid and user namespaces
/// belong to other modules.
public struct NamespaceImagesDump: DumpExtension, RestoreExtension {
    public static let handledKinds: [NamespaceKind] = [.uts, .ipc, .net, .time]

    /// CLONE_NEW* namespaces to create empty at restore (CRIU's empty_ns). The engine asks
    /// `namespaceFlags(images:)` without options, so the restore side takes them here.
    public var emptyNamespaces: UInt64

    public init(emptyNamespaces: UInt64 = 0) {
        self.emptyNamespaces = emptyNamespaces
    }

    // MARK: dump

    public func dump(_ session: DumpSession) throws {
        try dump(rootPid: session.tree.root.pid, images: session.images, emptyNamespaces: session.options.emptyNamespaces,
                 external: session.options.externalNamespaces, log: session.log)
    }

    /// The namespaces of `rootPid` that are not the dumper's own and not in
    /// `emptyNamespaces`, each written as CRIU names it. Returns the kinds written.
    @discardableResult
    public func dump(rootPid: Int32, images: ImageDirectory, emptyNamespaces: UInt64 = 0,
                     external: [String: String] = [:], log: Log) throws -> [NamespaceKind] {
        let root = try NamespaceSet.read(pid: rootPid)
        let own = try NamespaceSet.read(pid: getpid())
        let ids = NamespaceImageIDs.forRoot(root)
        var dumped: [NamespaceKind] = []
        for kind in root.external(to: own) {
            // The caller's own namespace, given back at restore: that wins over empty_ns.
            if kind == .net, let inode = root.inodes[.net], let key = external["net[\(inode)]"], let id = ids[.net] {
                try NetNamespace.dumpExternal(pid: rootPid, id: id, key: key, images: images, log: log)
                dumped.append(kind)
                continue
            }
            if emptyNamespaces & kind.cloneFlag.rawValue != 0 {
                log.info("\(kind.rawValue) namespace of pid \(rootPid): recreated empty at restore, not dumped")
                continue
            }
            guard let id = ids[kind] else { continue }
            switch kind {
            case .uts: try UTSNamespace.dump(pid: rootPid, id: id, images: images, log: log)
            case .ipc: try IPCNamespace.dump(pid: rootPid, id: id, images: images, log: log)
            case .net: try NetNamespace.dump(pid: rootPid, id: id, images: images, log: log)
            case .time: try TimeNamespace.dump(pid: rootPid, id: id, images: images, log: log)
            case .cgroup:
                log.info("cgroup namespace of pid \(rootPid): its root is recorded in cgroup.img (cgns_prefix)")
                continue
            case .pid, .mnt, .user:
                continue
            }
            dumped.append(kind)
        }
        if root.pendingForChildren.contains(.time) || root.forChildren[.time] != nil {
            log.warn("pid \(rootPid): time_for_children differs from its own time namespace; only its own is dumped")
        }
        return dumped
    }

    // MARK: restore

    /// The kinds a dump holds images for, with their ids.
    public func dumpedNamespaces(images: ImageDirectory) throws -> [(kind: NamespaceKind, id: UInt32)] {
        let kinds: [(NamespaceKind, ImageKind)] = [(.uts, .utsns), (.ipc, .ipcnsVar), (.net, .netns), (.time, .timens)]
        return try kinds.compactMap { kind, image in
            guard let id = try NamespaceImageIDs.restoreID(kind, image: image, in: images) else { return nil }
            // CRIU leaves an empty timens-0.img when the tree had no time namespace
            if kind == .time, try images.read(.timens(id), as: TimensEntry.self).isEmpty { return nil }
            return (kind, id)
        }
    }

    /// CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET for the namespaces the dump holds and for
    /// an empty net namespace. Not CLONE_NEWTIME: a time namespace must get its offsets
    /// before its first task, see `prepareTimeNamespace`.
    public func namespaceFlags(_ session: RestoreSession) throws -> UInt64 {
        try namespaceFlags(images: session.images)
    }

    public func namespaceFlags(images: ImageDirectory) throws -> UInt64 {
        var flags: UInt64 = 0
        for (kind, _) in try dumpedNamespaces(images: images) where kind != .time {
            flags |= kind.cloneFlag.rawValue
        }
        if try externalNetKey(images: images) != nil { flags &= ~NamespaceKind.net.cloneFlag.rawValue }
        flags |= emptyNamespaces & NamespaceKind.net.cloneFlag.rawValue
        return flags
    }

    /// Whether the dump holds a time namespace: then the thread that creates the root must
    /// call `prepareTimeNamespace` right before it.
    public func needsTimeNamespace(images: ImageDirectory) throws -> Bool {
        try dumpedNamespaces(images: images).contains { $0.kind == .time }
    }

    /// On the calling thread: creates the time namespace with the offsets that continue the
    /// dumped clocks; the next child the thread clones (without CLONE_NEWTIME) starts in it.
    public func prepareTimeNamespace(images: ImageDirectory, log: Log) throws {
        guard let found = try dumpedNamespaces(images: images).first(where: { $0.kind == .time }) else { return }
        try TimeNamespace.enterForChildren(id: found.id, images: images, log: log)
    }

    public func prepareRootClone(_ session: RestoreSession) throws {
        let images = session.images, log = session.log
        try prepareTimeNamespace(images: images, log: log)
        if let key = try externalNetKey(images: images) {
            guard let fd = session.options.inheritFds[key] else {
                throw CheckpointError(.invalidArgument, "the images name an external net namespace (key \(key)); restore with inherit_fd \(key) set to that namespace")
            }
            try NetNamespace.join(key: key, fd: fd, log: log)
        }
    }

    public func joinedNamespaces(_ session: RestoreSession) throws -> UInt64 {
        try externalNetKey(images: session.images) != nil ? NamespaceKind.net.cloneFlag.rawValue : 0
    }

    /// The key of the dump's net namespace when the caller owned it (external).
    func externalNetKey(images: ImageDirectory) throws -> String? {
        guard let id = try NamespaceImageIDs.restoreID(.net, image: .netns, in: images) else { return nil }
        return try NetNamespace.externalKey(id: id, images: images)
    }

    public func setUp(_ session: RestoreSession) throws {
        try setUp(rootPid: session.rootPid, images: session.images, emptyNamespaces: session.options.emptyNamespaces | emptyNamespaces, log: session.log)
    }

    /// Fills the new namespaces of `rootPid` from the images. Refuses to touch a namespace
    /// `rootPid` shares with the restorer (that would rename the host or fill its ipc).
    public func setUp(rootPid: Int32, images: ImageDirectory, emptyNamespaces: UInt64 = 0, log: Log) throws {
        let root = try NamespaceSet.read(pid: rootPid)
        let own = try NamespaceSet.read(pid: getpid())
        func requireOwn(_ kind: NamespaceKind) throws {
            guard root.inodes[kind] != own.inodes[kind] else {
                throw CheckpointError(.invalidState, "pid \(rootPid) shares the restorer's \(kind.rawValue) namespace; the dumped one must be restored into a new namespace (create the root with CLONE_NEW\(kind.rawValue.uppercased()))")
            }
        }
        let externalNet = try externalNetKey(images: images) != nil
        for (kind, id) in try dumpedNamespaces(images: images) {
            if kind == .net && externalNet { continue }
            if kind == .time {
                try checkTimeNamespace(rootPid: rootPid, shared: root.inodes[.time] == own.inodes[.time], id: id, images: images, log: log)
                continue
            }
            try requireOwn(kind)
            switch kind {
            case .uts: try UTSNamespace.restore(pid: rootPid, id: id, images: images, log: log)
            case .ipc: try IPCNamespace.restore(pid: rootPid, id: id, images: images, log: log)
            case .net: try NetNamespace.restore(pid: rootPid, id: id, images: images, log: log)
            default: break
            }
        }
        let netDumped = try NamespaceImageIDs.restoreID(.net, image: .netns, in: images) != nil
        if !netDumped && emptyNamespaces & NamespaceKind.net.cloneFlag.rawValue != 0 {
            try requireOwn(.net)
            try NetNamespace.bringLoopbackUp(pid: rootPid, log: log)
        }
    }

    /// Offsets cannot be changed once a task is in the namespace: only check, and say
    /// plainly when the root was not created in a prepared namespace.
    private func checkTimeNamespace(rootPid: Int32, shared: Bool, id: UInt32, images: ImageDirectory, log: Log) throws {
        if shared {
            log.warn("pid \(rootPid) is in the restorer's time namespace: its monotonic and boot-time clocks do not continue the dumped ones (the thread that creates the root must call prepareTimeNamespace first)")
            return
        }
        let offsets = try TimeNamespaceOffsets.read(pid: rootPid)
        let wanted = try TimeNamespace.offsets(continuing: try TimeNamespace.load(id: id, images: images))
        // The wanted offsets drift by the time since the namespace was made; a second is plenty.
        let drift = abs((offsets.monotonic - wanted.monotonic).seconds)
        if drift > 1 {
            log.warn("time namespace of pid \(rootPid): offsets monotonic \(offsets.monotonic), boottime \(offsets.boottime); the dump needs about monotonic \(wanted.monotonic), boottime \(wanted.boottime) (the root was not created after prepareTimeNamespace); its clocks jump")
        }
    }

    public func rollBack(_ session: RestoreSession) {
        // The namespaces die with their last task; nothing was made outside them.
    }
}
