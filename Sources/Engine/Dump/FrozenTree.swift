import Foundation
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
    }

    /// Parents before children.
    public private(set) var processes: [Process] = []
    private var seized: [Int32] = []

    public var root: Process { processes[0] }

    private init() {}

    /// Seizes the tree rooted at `root`. On any failure every seized thread is released
    /// and the error names the task.
    public static func freeze(root: Int32) throws -> FrozenTree {
        let tree = FrozenTree()
        do {
            try tree.seizeSubtree(root)
        } catch {
            tree.release()
            throw error
        }
        return tree
    }

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
        while true {
            guard let event = try TaskEvent.wait(tid) else { continue }
            switch event {
            case .stopped(_, Ptrace.eventStop):
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

    /// Detaches from every task; tasks that were job-control stopped stay stopped.
    public func release() {
        for tid in seized.reversed() {
            try? Ptrace(tid).detach()
        }
        seized.removeAll()
    }

    /// Kills every process of the tree (after a complete dump).
    public func kill() {
        for p in processes where !p.isZombie {
            Foundation.kill(p.pid, SIGKILL)
        }
        release()
    }
}
