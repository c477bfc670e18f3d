import Foundation
import LinuxKernel
import Images
import ProcFS

extension UserNamespace {
    static let nsGetUserns = 0xb701, nsGetParent = 0xb702

    /// The tree's own user namespace, or nil when it runs in ours. Refuses, in one line,
    /// the shapes the restore cannot rebuild: a namespace nested deeper than one level, a
    /// namespace of the root owned by another user namespace than the tree's (the restore
    /// creates every namespace from inside the new one), a time namespace (its offsets are
    /// written before the user namespace exists), a mount namespace that copies the host's
    /// mount tree (which the mount module does not dump; a container's is fine), a cgroup
    /// namespace whose root is not the root task's cgroup (restored from inside, it is rooted
    /// there), and more than one task without a pid namespace of the tree's own (clone3 with
    /// set_tid in ours needs CAP_CHECKPOINT_RESTORE in our user namespace, which no task
    /// inside has).
    static func dumped(_ tree: FrozenTree) throws -> UserNamespace? {
        let pid = tree.root.pid
        let root = try NamespaceSet.read(pid: pid)
        let own = try NamespaceSet.read(pid: getpid())
        guard let userns = root.inodes[.user], userns != own.inodes[.user] else { return nil }
        let parent = try relative(nsGetParent, of: "/proc/\(pid)/ns/user", "the parent of the user namespace of pid \(pid)")
        guard parent == own.inodes[.user] else {
            throw CheckpointError(.unsupported, "pid \(pid): its user namespace is nested more than one level below the dumper's; only one level is restored")
        }
        for kind in root.external(to: own) where kind != .user {
            if kind == .time {
                throw CheckpointError(.unsupported, "pid \(pid): a time namespace inside a user namespace cannot be restored (its offsets are set before the user namespace exists)")
            }
            if kind == .mnt, try sameFile("/proc/\(pid)/root", "/") {
                throw CheckpointError(.unsupported, "pid \(pid): its mount namespace inside a user namespace copies the host's mount tree (no root of its own); only a container's mount tree is restored there")
            }
            if kind == .cgroup, try !atCgroupNamespaceRoot(pid) {
                throw CheckpointError(.unsupported, "pid \(pid): its cgroups are below the root of its cgroup namespace; inside a user namespace that namespace is restored rooted at the task's cgroups")
            }
            let owner = try relative(nsGetUserns, of: "/proc/\(pid)/ns/\(kind.rawValue)", "the owner of the \(kind.rawValue) namespace of pid \(pid)")
            guard owner == userns else {
                throw CheckpointError(.unsupported, "pid \(pid): its \(kind.rawValue) namespace is owned by another user namespace than the tree's; the restore creates it inside the tree's")
            }
        }
        let tasks = tree.processes.filter { !$0.isZombie }.reduce(0) { $0 + $1.threads.count }
        if root.inodes[.pid] == own.inodes[.pid] && (tree.processes.count > 1 || tasks > 1) {
            throw CheckpointError(.unsupported, "pid \(pid): \(tasks) tasks in a user namespace without a pid namespace of their own; only a single-threaded process is restored there (clone3 set_tid in the host's pid namespace needs CAP_CHECKPOINT_RESTORE in the host's user namespace)")
        }
        return try read(pid: pid)
    }

    private static func sameFile(_ a: String, _ b: String) throws -> Bool {
        var x = stat(), y = stat()
        if stat(a, &x) != 0 { throw CheckpointError.errno("stat \(a)") }
        if stat(b, &y) != 0 { throw CheckpointError.errno("stat \(b)") }
        return x.st_dev == y.st_dev && x.st_ino == y.st_ino
    }

    /// /proc/PID/cgroup read from inside the task's cgroup namespace: "/" on every line
    /// when the task is at the namespace's root.
    private static func atCgroupNamespaceRoot(_ pid: Int32) throws -> Bool {
        let lines = try NamespaceJoin.run(in: pid, [.cgroup]) { try readProcFile("/proc/\(pid)/cgroup") }
        return lines.split(separator: "\n").allSatisfy { $0.split(separator: ":", maxSplits: 2).last == "/" }
    }

    /// The inode of the namespace an NS_GET_* ioctl on `path` gives.
    private static func relative(_ request: Int, of path: String, _ what: String) throws -> UInt64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open \(path)") }
        defer { close(fd) }
        let other = try Syscall.rawFd(what, SyscallNumber.ioctl, Int(fd), request)
        defer { close(other) }
        var st = stat()
        if fstat(other, &st) != 0 { throw CheckpointError.errno("fstat \(what)") }
        return UInt64(st.st_ino)
    }

    /// userns-ID.img, named by the id the task images give the namespace.
    func write(to images: ImageDirectory, id: UInt32, log: Log) throws {
        try images.write(.userns(id), [entry])
        log.info("user namespace \(id): uid_map \(uidMap.count) extents, gid_map \(gidMap.count), setgroups \(setgroupsDenied ? "deny" : "allow")")
    }
}

extension Optional where Wrapped == UserNamespace {
    /// A task's core with its credentials as its own user namespace shows them.
    func inside(_ core: CoreEntry) -> CoreEntry {
        guard case .some(let userns) = self, core.hasThreadCore, core.threadCore.hasCreds else { return core }
        var c = core
        c.threadCore.creds = userns.inside(core.threadCore.creds)
        return c
    }
}
