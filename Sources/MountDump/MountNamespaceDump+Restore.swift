import Foundation
import Engine
import LinuxKernel
import Images
import ProcFS

extension MountNamespaceDump {
    /// Rebuilds the dumped mount tree under `root` inside the mount namespace of `rootPid`
    /// (a task just created with CLONE_NEWNS, stopped) and makes it that namespace's root.
    /// `externalMounts` maps the images' external keys to host paths (runc's ext_mnt);
    /// with `autoExternal` a mount the dump found external by itself is bound from the host
    /// path it recorded.
    /// Images without a mountpoints image (a host tree) need nothing and get nothing.
    /// A pty whose slave a mount binds is made into `ptys`, for the terminal restore to take
    /// (the session's; a caller that restores only the mounts may leave the default).
    public static func restore(rootPid: Int32, images: ImageDirectory, root: String?,
                               externalMounts: [String: String] = [:], autoExternal: Bool = false, ptys: PtyReservations = PtyReservations(),
                               log: Log = .silent) throws {
        guard let name = try imageName(in: images) else {
            log.info("mnt: no mountpoints image: the tree keeps the restorer's mount namespace")
            return
        }
        guard let root else {
            throw CheckpointError(.invalidArgument, "the images hold a container's mount namespace (\(name)); restoring it needs the directory to build it in (root, e.g. --root)")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CheckpointError(.invalidArgument, "root \(root) for the restored mount tree is not a directory")
        }
        var entries = try images.read(name, as: MntEntry.self)
        var externalMounts = externalMounts
        for i in entries.indices where entries[i].externalKey == autoExternalKey {
            guard autoExternal else {
                throw CheckpointError(.invalidArgument, "external mount \(entries[i].mountpoint) was found external by the dump (from /\(entries[i].source)); restore with --ext-mount-map auto to bind it from there")
            }
            // One key per mount: each binds its own host path.
            let key = "\(autoExternalKey):\(entries[i].mountpoint)"
            entries[i].extKey = key
            externalMounts[key] = "/" + entries[i].source
        }
        let plan: MountPlan
        do { plan = try MountPlan(entries: entries) } catch let failure as MountPlan.Failure {
            throw CheckpointError(.unsupported, "\(name): \(describe(failure, entries))")
        }
        for step in plan.steps {
            guard case .external(let key) = step.origin else { continue }
            if externalMounts[key] == nil {
                throw CheckpointError(.invalidArgument, "external mount \(entries[step.index].mountpoint): no host path given for key \"\(key)\" (pass ext_mnt \(key):PATH)")
            }
        }
        // proc shows the pid namespace of the task that mounts it; ours is the host's.
        let foreignPids = try NamespaceSet.inode(of: .pid, pid: rootPid) != NamespaceSet.inode(of: .pid, pid: getpid())
        let builder = MountTreeBuilder(plan: plan, images: images, root: root, externals: externalMounts, ptys: ptys,
                                       procPidNamespace: foreignPids ? "/proc/\(rootPid)/ns/pid" : nil, log: log)
        // sysfs, mqueue and cgroup show the net, ipc and cgroup namespaces of who mounts them.
        let kinds = [NamespaceKind.mnt, .net, .ipc, .cgroup].filter { FileManager.default.fileExists(atPath: "/proc/\(rootPid)/ns/\($0.rawValue)") }
        try NamespaceJoin.run(in: rootPid, kinds) {
            try builder.build()
        }
        log.info("mnt: \(entries.count) mounts rebuilt under \(root) and pivoted into for pid \(rootPid)")
    }

    static func describe(_ failure: MountPlan.Failure, _ entries: [MntEntry]) -> String {
        switch failure {
        case .noRoot: return "no root mount (\"/\")"
        case .severalRoots(let r): return "several root mounts (ids \(r.map { entries[$0].mntID }))"
        case .noParent(let i): return "mount \(entries[i].mountpoint) has no parent mount \(entries[i].parentMntID)"
        case .outside(let i): return "mount \(entries[i].mountpoint) (from \(entries[i].source):\(entries[i].root)) is outside the container and not external"
        case .unsupported(let i): return "mount \(entries[i].mountpoint): file system type \(entries[i].fstype) (source \(entries[i].source)) is not supported"
        case .dependencyCycle(let p): return "mounts \(p.map { entries[$0].mountpoint }) bind from each other in a cycle"
        }
    }
}

/// Builds one plan, on a thread that has joined the new namespaces: every mount is made
/// at a target resolved inside the root (openat2 RESOLVE_IN_ROOT) and addressed through
/// its fd, so symlinks in the container's tree cannot point a mount elsewhere.
final class MountTreeBuilder {
    let plan: MountPlan
    let images: ImageDirectory
    let root: String
    let externals: [String: String]
    let procPidNamespace: String?
    let ptys: PtyReservations
    let log: Log
    /// Entry index -> O_PATH fd on the root of the mount made for it.
    private var mounted: [Int: Int32] = [:]
    private var rootFd: Int32 = -1

    init(plan: MountPlan, images: ImageDirectory, root: String, externals: [String: String], ptys: PtyReservations,
         procPidNamespace: String?, log: Log) {
        self.ptys = ptys
        self.plan = plan
        self.images = images
        self.root = root
        self.externals = externals
        self.procPidNamespace = procPidNamespace
        self.log = log
    }

    func build() throws {
        defer { for fd in mounted.values { close(fd) } }
        // Nothing made here may reach the host; the host's own later mounts still reach the
        // container's binds of host paths, as they reach a runc container (rslave).
        try MountCall.mount(nil, "/", nil, [.recursive, .slave], nil, "make the new mount namespace a slave of the host's")
        // A mount of its own on top, even when the caller's root already is one: the new
        // root must be a mount point, and this one carries the recorded flags.
        try MountCall.mount(root, root, nil, .bind, nil, "bind \(root) onto itself")
        rootFd = open(root, oPath | O_DIRECTORY | O_CLOEXEC)
        if rootFd < 0 { throw CheckpointError.errno("open \(root)") }
        mounted[plan.rootIndex] = rootFd
        for step in plan.steps where step.origin != .root { try make(step) }
        for step in plan.steps { try applyFlags(step) }
        try pivot()
        try MountPropagation(entries: plan.entries, order: plan.steps.map(\.index), mounted: mounted, log: log).apply()
    }

    private func make(_ step: MountPlan.Step) throws {
        let e = plan.entries[step.index]
        let mp = e.mountpoint
        switch step.origin {
        case .root:
            return
        case .external(let key):
            let host = externals[key]!
            var st = stat()
            if stat(host, &st) != 0 { throw CheckpointError.errno("external mount \(mp): host path \(host) (key \(key))") }
            let target = try mountPoint(mp, directory: Self.isDirectory(st))
            defer { close(target) }
            try MountCall.mount(host, MountCall.fdPath(target), nil, .bind, nil, "bind \(host) (external \(key)) at \(mp)")
        case .bind(let source, let path):
            let sourceMount = plan.entries[source].mountpoint
            if plan.entries[source].fstype == UInt32(Fstype.devpts.rawValue), let index = UInt32(path.drop { $0 == "/" }) {
                try ptys.reserve(index, devpts: mounted[source]!)
            }
            // The source mount itself may be a file: only a path below it needs resolving.
            let from = path.isEmpty ? dup(mounted[source]!)
                : try MountCall.openInRoot(mounted[source]!, path, flags: oPath, "open \(path) below \(sourceMount) to bind at \(mp)")
            if from < 0 { throw CheckpointError.errno("dup the fd of \(sourceMount)") }
            defer { close(from) }
            let target = try mountPoint(mp, directory: try Self.isDirectory(from))
            defer { close(target) }
            try MountCall.mount(MountCall.fdPath(from), MountCall.fdPath(target), nil, .bind, nil,
                                "bind \(MountPath.join(sourceMount, path)) at \(mp)")
        case .fresh(let type):
            let target = try mountPoint(mp, directory: true)
            defer { close(target) }
            var flags = e.superblockFlags.intersection([.readOnly, .synchronous, .dirSync, .lazyTime])
                .union(e.mountFlags.intersection([.noSuid, .noDev, .noExec]))
            // Filled first, made read-only after.
            if type.kind == .tmpfs { flags.remove(.readOnly) }
            let data = options(e, type).joined(separator: ",")
            try MountCall.mount(e.source, MountCall.fdPath(target), type.name, flags, data.isEmpty ? nil : data,
                                "mount \(type.name) (\(data)) at \(mp)")
        case .freshSubtree(let type, let path):
            let whole = try MountCall.freshDetached(type.name, source: e.source, options: options(e, type))
            defer { close(whole) }
            let from = try MountCall.openInRoot(whole, path, flags: oPath, "open \(path) in a new \(type.name) mount")
            defer { close(from) }
            let target = try mountPoint(mp, directory: try Self.isDirectory(from))
            defer { close(target) }
            try MountCall.mount(MountCall.fdPath(from), MountCall.fdPath(target), nil, .bind, nil,
                                "bind \(type.name) \(path) at \(mp)")
        }
        let made = try MountCall.openInRoot(rootFd, mp, flags: oPath, "open \(mp) after mounting it")
        mounted[step.index] = made
        log.debug("mnt: made \(mp): \(step.origin)")
        if step.restoresContents { try fill(e, at: made) }
    }

    /// The superblock options to mount with, unescaped; devpts always a new instance, proc
    /// for the restored tree's pid namespace.
    private func options(_ e: MntEntry, _ type: FileSystemType) -> [String] {
        var list = e.options.split(separator: ",").map { MountInfoEntry.unescape($0) }
        if type.code == .devpts && !list.contains("newinstance") { list.append("newinstance") }
        if type.code == .proc, let ns = procPidNamespace { list.append("pidns=\(ns)") }
        return list
    }

    private func fill(_ e: MntEntry, at fd: Int32) throws {
        guard let image = [e.tmpfsImageName, e.legacyTmpfsImageName].first(where: images.exists) else {
            log.warn("mnt: no contents image for the tmpfs at \(e.mountpoint) (\(e.tmpfsImageName)); it stays empty")
            return
        }
        try TmpfsArchive.extract(images.file(image), into: "/proc/\(getpid())/fd/\(fd)")
    }

    /// Superblock read-only for a tmpfs we filled, then the exact per-mount flags.
    private func applyFlags(_ step: MountPlan.Step) throws {
        let e = plan.entries[step.index]
        let fd = mounted[step.index]!
        if case .fresh(let type) = step.origin, type.kind == .tmpfs, e.superblockFlags.contains(.readOnly) {
            try MountCall.mount(nil, MountCall.fdPath(fd), nil, [.remount, .readOnly], nil,
                                "remount the tmpfs at \(e.mountpoint) read-only")
        }
        let flags = e.mountFlags
        var set: UInt64 = 0
        if flags.contains(.readOnly) { set |= MountCall.attrReadOnly }
        if flags.contains(.noSuid) { set |= MountCall.attrNoSuid }
        if flags.contains(.noDev) { set |= MountCall.attrNoDev }
        if flags.contains(.noExec) { set |= MountCall.attrNoExec }
        if flags.contains(.noSymFollow) { set |= MountCall.attrNoSymFollow }
        if flags.contains(.noDirAtime) { set |= MountCall.attrNoDirAtime }
        switch flags.atimeForRemount {
        case .noAtime: set |= MountCall.attrNoAtime
        case .strictAtime: set |= MountCall.attrStrictAtime
        default: break
        }
        let clear = MountCall.attrReadOnly | MountCall.attrNoSuid | MountCall.attrNoDev | MountCall.attrNoExec
            | MountCall.attrNoSymFollow | MountCall.attrNoDirAtime | MountCall.attrAtimeMask
        try MountCall.setAttributes(fd, set: set, clear: clear, "set the flags of \(e.mountpoint)")
    }

    /// pivot_root(".", ".") stacks the old root on the new one; detaching it leaves the
    /// new tree alone in the namespace. Tasks whose root was the old root (the restored
    /// root task, this thread) now have the new one.
    private func pivot() throws {
        if fchdir(rootFd) != 0 { throw CheckpointError.errno("chdir to \(root)") }
        try MountCall.pivotRoot(".", ".")
        try MountCall.umount(".", flags: MountCall.mntDetach, "detach the old root after pivot_root into \(root)")
        if chdir("/") != 0 { throw CheckpointError.errno("chdir / after pivot_root") }
    }

    /// The mount point `path` inside the root, created (a directory, or an empty file for a
    /// bind of a file) when the root lacks it, as runc creates them.
    private func mountPoint(_ path: String, directory: Bool) throws -> Int32 {
        do {
            return try MountCall.openInRoot(rootFd, path, flags: oPath, "open mount point \(path) in \(root)")
        } catch let e as CheckpointError where e.errno == .ENOENT {
            try create(path, directory: directory)
            log.info("mnt: created the missing mount point \(path) in \(root)")
            return try MountCall.openInRoot(rootFd, path, flags: oPath, "open mount point \(path) in \(root)")
        }
    }

    private func create(_ path: String, directory: Bool) throws {
        let parent = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let dir: Int32
        do {
            dir = try MountCall.openInRoot(rootFd, parent, flags: oPath | O_DIRECTORY, "open \(parent) in \(root)")
        } catch let e as CheckpointError where e.errno == .ENOENT {
            try create(parent, directory: true)
            dir = try MountCall.openInRoot(rootFd, parent, flags: oPath | O_DIRECTORY, "open \(parent) in \(root)")
        }
        defer { close(dir) }
        if directory {
            if mkdirat(dir, name, 0o755) != 0 && errno != EEXIST { throw CheckpointError.errno("mkdir \(path) in \(root)") }
        } else {
            let fd = openat(dir, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if fd < 0 { throw CheckpointError.errno("create \(path) in \(root)") }
            close(fd)
        }
    }

    private static func isDirectory(_ st: stat) -> Bool { (st.st_mode & S_IFMT) == S_IFDIR }

    private static func isDirectory(_ fd: Int32) throws -> Bool {
        var st = stat()
        if fstat(fd, &st) != 0 { throw CheckpointError.errno("fstat a bind source") }
        return isDirectory(st)
    }
}
