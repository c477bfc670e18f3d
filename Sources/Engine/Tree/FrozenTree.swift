import Foundation
import LinuxKernel
import Images
import ProcFS

/// A process tree with every thread seized and stopped by ptrace. Created by `freeze`,
/// ended by `release` (detach, leaving every task as it was) or `kill`.
public final class FrozenTree {
    public struct Process {
        public let pid: Int32
        public let stat: TaskStat
        public var threads: [Int32]
        /// Job-control stopped (state T) before we came: stays stopped afterwards.
        public let wasStopped: Bool
        public var isZombie: Bool { stat.state == "Z" }
        /// Ids as the tree's own pid namespace sees them (the images use these).
        public internal(set) var vpid: Int32 = 0
        public internal(set) var vppid: Int32 = 0
        public internal(set) var vpgid: Int32 = 0
        public internal(set) var vsid: Int32 = 0
        /// Thread ids in the tree's pid namespace, in the order of `threads`.
        public internal(set) var vthreads: [Int32] = []
    }

    /// The tree runs in a pid namespace of its own, whose init is the root.
    public private(set) var ownsPidNamespace = false
    /// /proc/PID/task/TID/status of every task, read once while the tree is seized.
    private var statuses: [Int32: TaskStatus] = [:]
    /// The signal of each thread's first stop after the seize: SIGTRAP for a running
    /// thread, the stop signal (SIGSTOP, SIGTSTP, ...) for one in a group stop.
    private var seizeStops: [Int32: Int32] = [:]

    /// The signal that stopped `tid` before the dump, nil when it was running.
    public func stopSignal(_ tid: Int32) -> Int32? {
        seizeStops[tid].flatMap { $0 == SIGTRAP ? nil : $0 }
    }

    /// The status of thread `tid` of `pid` as read while seized (before any injection).
    public func status(_ pid: Int32, tid: Int32? = nil) throws -> TaskStatus {
        if let s = statuses[tid ?? pid] { return s }
        return try TaskStatus.read(pid: pid, tid: tid)
    }

    /// Parents before children.
    public private(set) var processes: [Process] = []
    private var seized: [Int32] = []

    public var root: Process { processes[0] }

    private init() {}

    /// Seizes the tree rooted at `root`. On any failure every seized thread is released
    /// and the error names the task.
    /// With a `freezer` (the container's cgroup freezer), the tree is frozen while it is
    /// walked and seized, so that nothing forks meanwhile, and thawed before the ptrace
    /// stops are collected; it is thawed on every path.
    public static func freeze(root: Int32, freezer: TreeFreezer? = nil) throws -> FrozenTree {
        let tree = FrozenTree()
        tree.freezer = freezer
        var thawed = freezer == nil
        do {
            try freezer?.freeze()
            tree.deferStops = freezer != nil
            try tree.seizeSubtree(root)
            freezer?.thaw()
            thawed = true
            for (tid, pid) in tree.pendingStops { try tree.waitForStop(tid, of: pid) }
            tree.pendingStops.removeAll()
            try tree.resolveVirtualIDs()
        } catch {
            if !thawed { freezer?.thaw() }
            tree.release()
            throw error
        }
        return tree
    }

    private var freezer: TreeFreezer?
    private var deferStops = false
    private var pendingStops: [(Int32, Int32)] = []

    private func seizeSubtree(_ pid: Int32) throws {
        let stat: TaskStat
        do { stat = try TaskStat.read(pid: pid, tid: nil) } catch {
            throw CheckpointError(.notFound, "pid \(pid): no such process (or it exited during the dump)")
        }
        var process = Process(pid: pid, stat: stat, threads: [], wasStopped: stat.state == "T")
        if process.isZombie {
            processes.append(process)
            return
        }
        // Threads may be created while we seize; repeat until the list is stable.
        while true {
            let threads = try listed("threads of pid \(pid)") { try ProcTree.threads(of: pid) }
            let fresh = threads.filter { !process.threads.contains($0) }
            if fresh.isEmpty { break }
            for tid in fresh {
                try seizeThread(tid, of: pid)
                process.threads.append(tid)
            }
        }
        process.threads.sort()
        if let main = process.threads.firstIndex(of: pid), main != 0 {
            process.threads.swapAt(0, main)
        }
        processes.append(process)
        // Every thread is stopped: the children list can no longer change.
        for child in try listed("children of pid \(pid)", { try ProcTree.children(of: pid) }) {
            try seizeSubtree(child)
        }
    }

    private func listed(_ what: String, _ body: () throws -> [Int32]) throws -> [Int32] {
        do { return try body() } catch {
            throw CheckpointError(.notFound, "\(what): \(error) (the task exited during the dump)")
        }
    }

    private func seizeThread(_ tid: Int32, of pid: Int32) throws {
        let ptrace = Ptrace(tid)
        do { try ptrace.seize() } catch {
            if errno == ESRCH { throw CheckpointError(.notFound, "tid \(tid) of pid \(pid) exited during the dump") }
            if errno == EPERM { throw CheckpointError(.invalidState, "tid \(tid) of pid \(pid) cannot be seized: already traced by another process, or not permitted") }
            throw error
        }
        seized.append(tid)
        try ptrace.interrupt()
        if deferStops { pendingStops.append((tid, pid)) } else { try waitForStop(tid, of: pid) }
    }

    private func waitForStop(_ tid: Int32, of pid: Int32) throws {
        let ptrace = Ptrace(tid)
        while true {
            guard let event = try TaskEvent.wait(tid) else { continue }
            switch event {
            case .stopped(let sig, Ptrace.eventStop):
                seizeStops[tid] = sig
                return
            case .stopped(let sig, _):
                // A signal arrived first: let it be delivered, as if before the dump.
                try ptrace.cont(signal: sig)
            case .exited, .killed:
                seized.removeAll { $0 == tid }
                throw CheckpointError(.notFound, "tid \(tid) of pid \(pid) exited during the dump")
            }
        }
    }

    /// Ids in the root's pid namespace: NSpid/NSpgid/NSsid at the root's nesting level.
    private func resolveVirtualIDs() throws {
        let level = try TaskStatus.read(pid: root.pid, tid: nil).nsPid.count - 1
        guard level >= 0 else { throw CheckpointError(.unsupported, "pid \(root.pid): /proc shows no NSpid (kernel too old)") }
        ownsPidNamespace = level > 0
        func at<T>(_ list: [T], _ what: String, _ pid: Int32) throws -> T {
            guard list.count > level else { throw CheckpointError(.invalidState, "pid \(pid): no \(what) in the pid namespace of the root") }
            return list[level]
        }
        var hostToVirtual: [Int32: Int32] = [:]
        for i in processes.indices {
            let p = processes[i]
            let status = try TaskStatus.read(pid: p.pid, tid: nil)
            statuses[p.pid] = status
            for tid in p.threads where tid != p.pid { statuses[tid] = try TaskStatus.read(pid: p.pid, tid: tid) }
            processes[i].vpid = try at(status.nsPid, "pid", p.pid)
            processes[i].vpgid = try at(status.nsPgid, "process group", p.pid)
            processes[i].vsid = try at(status.nsSid, "session", p.pid)
            processes[i].vthreads = try p.threads.map { try at(statuses[$0]?.nsPid ?? status.nsPid, "tid", $0) }
            if p.isZombie { processes[i].vthreads = [processes[i].vpid] }
            hostToVirtual[p.pid] = processes[i].vpid
        }
        for i in processes.indices where i > 0 {
            processes[i].vppid = hostToVirtual[processes[i].stat.ppid] ?? 0
        }
        if ownsPidNamespace && root.vpid != 1 {
            throw CheckpointError(.unsupported, "pid \(root.pid) is pid \(root.vpid) of a pid namespace whose init is outside the tree: dump from that namespace's init")
        }
    }

    /// Detaches from every task; tasks that were job-control stopped stay stopped.
    /// Lets every task go; with `stopped`, each process gets a SIGSTOP first, which it
    /// takes (stopping its whole thread group) as soon as it is detached: the release
    /// returns once each has, so a caller of --leave-stopped finds the tree stopped.
    public func release(stopped: Bool = false) {
        let live = processes.filter { !$0.isZombie }.map(\.pid)
        if stopped { for pid in live { _ = Glibc.kill(pid, SIGSTOP) } }
        let detach = {
            for tid in self.seized.reversed() { try? Ptrace(tid).detach() }
            self.seized.removeAll()
        }
        if let freezer { freezer.restoringOriginalState(detach) } else { detach() }
        guard stopped else { return }
        for pid in live {
            for _ in 0..<2000 {
                guard let stat = try? TaskStat.read(pid: pid), stat.state != "T" else { break }
                usleep(1000)
            }
        }
    }

    /// Kills every process of the tree (after a complete dump) and collects the deaths
    /// that are reported to us as their tracer.
    public func kill() {
        TaskReaper.killAndReap(seized)
        seized.removeAll()
    }
}
