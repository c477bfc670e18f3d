import Foundation
import CShim
import LinuxKernel
import Images

/// The cgroup namespace at restore. A new cgroup namespace is rooted at the cgroups of the
/// task that creates it, at that moment; the dumped root task's namespace was rooted at its
/// cgns_prefix. So the namespace is made by the thread that will clone the root: the thread
/// steps into the namespace-root cgroups, unshares CLONE_NEWCGROUP, steps back; the root,
/// cloned next without CLONE_NEWCGROUP, inherits the namespace, and setUp then moves it
/// into its own cgroups below that root.
extension CgroupsDump {
    /// Per hierarchy, the cgroup directory (as restored) the root task's cgroup namespace
    /// must be rooted at; empty when the dump had no cgroup namespace of its own.
    public static func namespaceRoots(images: ImageDirectory, cgroupRoots: [String: String],
                                      rootSetID: UInt32? = nil) throws -> [(hierarchy: any CgroupHierarchy, directory: String)] {
        guard let entry = try load(images: images) else { return [] }
        let setID = try rootSetID ?? Self.rootSetID(images)
        guard let set = entry.sets.first(where: { $0.id == setID }) else { return [] }
        let plan = try plan(entry, cgroupRoots: cgroupRoots)
        var roots: [(hierarchy: any CgroupHierarchy, directory: String)] = []
        for m in set.ctls where m.hasCgnsPrefix && m.cgnsPrefix > 0 {
            guard let h = plan.first(where: { $0.names(m.name) }) else { continue }
            let prefix = String(decoding: Array(m.path.utf8).prefix(Int(m.cgnsPrefix)), as: UTF8.self)
            roots.append((h.hierarchy, h.hierarchy.directory(h.map(prefix))))
        }
        return roots
    }

    /// On the calling thread: creates the dumped cgroup namespace (rooted at
    /// `namespaceRoots`) for the children this thread clones next. Returns false when the
    /// dump has none. The thread's own cgroups are as before afterwards; its own cgroup
    /// namespace is the new one, so use a thread made for the purpose.
    @discardableResult
    public func prepareCgroupNamespace(images: ImageDirectory, cgroupRoots: [String: String], log: Log) throws -> Bool {
        let roots = try Self.namespaceRoots(images: images, cgroupRoots: cgroupRoots)
        guard !roots.isEmpty else { return false }
        let tid = Syscall.gettid()
        let own = try Self.membership(tid)
        var back: [(any CgroupHierarchy, String, wholeProcess: Bool)] = []
        defer {
            for (h, dir, whole) in back.reversed() {
                do {
                    if whole { try h.move(pid: getpid(), toDirectory: dir) } else { try h.moveThread(tid: tid, toDirectory: dir) }
                } catch {
                    log.error("cgroups: cannot move \(whole ? "pid \(getpid())" : "thread \(tid)") back into \(dir): \(error)")
                }
            }
        }
        for (h, dir) in roots {
            guard let line = own.first(where: { h.matches($0) }) else { continue }
            let current = h.directory(line.path)
            if current == dir { continue }
            if !CgroupFile.exists(dir) { try makeDirectory(dir, in: h, log: log) }
            do {
                try h.moveThread(tid: tid, toDirectory: dir)
                back.append((h, current, wholeProcess: false))
            } catch let e as CheckpointError where h.isUnified {
                // cgroup v2 moves threads alone only inside threaded subtrees: the whole
                // restorer goes in for the unshare and back out (LXC's restore needs it;
                // runc puts the restorer there itself).
                do { try h.move(pid: getpid(), toDirectory: dir) } catch let whole as CheckpointError {
                    throw CheckpointError(.unsupported, "cgroup namespace: neither thread \(tid) (\(e.message)) nor the restorer (\(whole.message)) can enter \(dir) in the unified hierarchy", cause: whole)
                }
                back.append((h, current, wholeProcess: true))
            }
        }
        try Syscall.raw("unshare(CLONE_NEWCGROUP) on thread \(tid)", SyscallNumber.unshare, CloneFlags.newCgroup.argument)
        log.info("cgroups: cgroup namespace made at \(roots.map(\.directory).joined(separator: ", "))")
        return true
    }
}
