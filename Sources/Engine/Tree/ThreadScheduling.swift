import Foundation
import LinuxKernel
import Images

/// A thread's scheduling as CRIU keeps it in thread_core: the policy with
/// SCHED_RESET_ON_FORK or'ed in (what sched_getscheduler returns), the real-time
/// priority for FIFO/RR, and the nice value. Read and set from outside, by host tid.
enum ThreadScheduling {
    static let resetOnFork: UInt32 = 0x4000_0000
    static let fifo: UInt32 = 1, rr: UInt32 = 2, deadline: UInt32 = 6

    /// struct sched_attr (the 56-byte version 1).
    struct Attr {
        var size: UInt32 = 56, policy: UInt32 = 0
        var flags: UInt64 = 0
        var nice: Int32 = 0
        var priority: UInt32 = 0
        var runtime: UInt64 = 0, deadline: UInt64 = 0, period: UInt64 = 0
    }

    static func read(tid: Int32, pid: Int32, into core: inout ThreadCoreEntry) throws {
        var attr = Attr()
        _ = try withUnsafeMutablePointer(to: &attr) {
            try Syscall.raw("sched_getattr of tid \(tid)", SyscallNumber.schedGetattr, Int(tid), Int(bitPattern: $0), MemoryLayout<Attr>.size, 0)
        }
        if attr.policy == deadline {
            throw CheckpointError(.unsupported, "tid \(tid) of pid \(pid) runs under SCHED_DEADLINE, which cannot be restored")
        }
        core.schedPolicy = attr.policy | (attr.flags & 1 != 0 ? resetOnFork : 0)
        if attr.policy == fifo || attr.policy == rr { core.schedPrio = attr.priority }
        core.schedNice = attr.nice
    }

    /// Policy (with its reset-on-fork flag) and priority, then the nice value, which the
    /// kernel keeps for every policy. The thread is a fresh copy of the restorer's
    /// scheduling, so each value is set even when it is the default.
    static func apply(_ core: ThreadCoreEntry, tid: Int32, vtid: Int32) throws {
        var prio = Int32(core.schedPrio)
        try withUnsafeMutablePointer(to: &prio) {
            _ = try Syscall.raw("sched_setscheduler of tid \(vtid) to policy \(UInt64(core.schedPolicy).hex) priority \(core.schedPrio)",
                                SyscallNumber.schedSetscheduler, Int(tid), Int(core.schedPolicy), Int(bitPattern: $0))
        }
        _ = try Syscall.raw("setpriority of tid \(vtid) to \(core.schedNice)", SyscallNumber.setpriority, 0 /* PRIO_PROCESS */, Int(tid), Int(core.schedNice))
    }
}
