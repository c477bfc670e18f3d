import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

/// Per-task state of one seized process: everything that goes into core-TID.img for each
/// of its threads (and the task-wide part in the main thread's core), plus sigactions.
struct TaskDump {
    var cores: [Int32: CoreEntry] = [:]
    var sigactions: [SaEntry] = []
    var brk: UInt64 = 0
    var dumpable: UInt32 = 1

    /// Collects the task and thread state of `process` through `probe` and ptrace.
    static func collect(_ process: FrozenTree.Process, in tree: FrozenTree, probe: ProcessProbe, seccomp: SeccompDump) throws -> TaskDump {
        let status = try tree.status(process.pid)
        var out = TaskDump()
        let pid = process.pid
        let main = process.threads[0]
        // Task-wide state, asked of the main thread.
        let handled = status.sigCgt | status.sigIgn | (1 << UInt64(SIGCHLD - 1))
        var timers = TaskTimersEntry()
        var subreaper = false
        var membarriers: Int64 = -1
        try probe.inject(on: main) { task in
            out.sigactions = try sigactions(of: task, handled: handled)
            timers = try itimers(of: task)
            timers.posix = try PosixTimersDump.collect(process, task: task)
            out.brk = try task.call("brk(0)", SyscallNumber.brk, 0)
            out.dumpable = UInt32(try task.call("prctl(PR_GET_DUMPABLE)", SyscallNumber.prctl, 3))
            try task.call("prctl(PR_GET_CHILD_SUBREAPER)", SyscallNumber.prctl, 37, task.data)
            subreaper = try task.readValue(task.data, as: UInt32.self) != 0
            // MEMBARRIER_CMD_GET_REGISTRATIONS (Linux 6.3): the REGISTER_* commands this mm took.
            membarriers = try task.callRaw(on: nil, SyscallNumber.membarrier, [1 << 9, 0, 0])
        }

        var tc = TaskCoreEntry()
        tc.taskState = process.wasStopped ? TaskState.stopped : TaskState.alive
        // The parent's wait reports the stop signal (WSTOPSIG): SIGTSTP is not SIGSTOP.
        if process.wasStopped { tc.stopSigno = UInt32(tree.stopSignal(pid) ?? SIGSTOP) }
        tc.exitCode = 0
        tc.personality = UInt32(try readProcFile("/proc/\(pid)/personality").trimmingCharacters(in: .whitespacesAndNewlines), radix: 16) ?? 0
        tc.flags = process.stat.flags
        tc.blkSigset = try probe.originalMask(main)
        tc.comm = process.stat.comm
        tc.timers = timers
        tc.rlimits = try ResourceLimits.read(pid)
        tc.childSubreaper = subreaper
        if membarriers > 0 { tc.membarrierRegistrationMask = UInt32(membarriers) }
        if let uid = UInt32((try? readProcFile("/proc/\(pid)/loginuid"))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") {
            tc.loginuid = uid
        }
        var shared = SignalQueueEntry()
        shared.signals = try Ptrace(main).pendingSignals(shared: true).map { var s = SiginfoEntry(); s.siginfo = Data($0); return s }
        tc.signalsS = shared
        if let adj = Int32((try? readProcFile("/proc/\(pid)/oom_score_adj"))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") {
            tc.oomScoreAdj = adj
        }

        for tid in process.threads {
            var core = CoreEntry()
            core.mtype = .x8664
            let ptrace = Ptrace(tid)
            var info = ThreadInfoX86()
            info.gpregs = UserX86RegsEntry(try ptrace.registers().rewoundToRestartSyscall)
            info.fpregs = UserX86FpregsEntry(xsave: try ptrace.xstate())
            var tcore = ThreadCoreEntry()
            let tstatus = try tree.status(pid, tid: tid)
            let tstat = tid == pid ? process.stat : try TaskStat.read(pid: pid, tid: tid)
            try probe.inject(on: tid) { task in
                (info.clearTidAddr_p, tcore.sas, tcore.pdeathSig) = try threadState(of: task, tid: tid)
            }
            var head: UInt64 = 0, len: UInt64 = 0
            try withUnsafeMutablePointer(to: &head) { h in try withUnsafeMutablePointer(to: &len) { l in
                _ = try Syscall.raw("get_robust_list of tid \(tid)", SyscallNumber.getRobustList, Int(tid), Int(bitPattern: h), Int(bitPattern: l)) } }
            tcore.futexRla = head
            tcore.futexRlaLen = UInt32(len)
            tcore.blkSigset = try probe.originalMask(tid)
            try ThreadScheduling.read(tid: tid, pid: pid, into: &tcore)
            var priv = SignalQueueEntry()
            priv.signals = try ptrace.pendingSignals(shared: false).map { var s = SiginfoEntry(); s.siginfo = Data($0); return s }
            tcore.signalsP = priv
            tcore.creds = creds(tstatus)
            // Securebits (keep-caps, no-setuid-fixup, ...) are per thread and not in /proc.
            tcore.creds.secbits = UInt32(try probe.inject(on: tid) { try $0.call("prctl(PR_GET_SECUREBITS)", on: tid, SyscallNumber.prctl, 27) })
            switch tstatus.seccomp {
            case 0: tcore.seccompMode = .disabled
            case 1: tcore.seccompMode = .strict
            case 2:
                tcore.seccompMode = .filter
                tcore.seccompFilter = try seccomp.add(tid: tid)
            default:
                throw CheckpointError(.unsupported, "tid \(tid) of pid \(pid) shows seccomp mode \(tstatus.seccomp), unknown to this dumper")
            }
            if let conf = try? ptrace.rseqConfiguration(), conf.rseq_abi_pointer != 0 {
                var rs = RseqEntry()
                rs.rseqAbiPointer = conf.rseq_abi_pointer
                rs.rseqAbiSize = conf.rseq_abi_size
                rs.signature = conf.signature
                tcore.rseqEntry = rs
            }
            tcore.comm = tstat.comm
            core.threadInfo = info
            core.threadCore = tcore
            if tid == pid { core.tc = tc }
            out.cores[tid] = core
        }
        return out
    }

    /// The task's sigactions, one per signal but SIGKILL and SIGSTOP; only the signals
    /// /proc says are caught or ignored (and SIGCHLD, whose default differs) are asked.
    static func sigactions(of task: TaskControl, handled: UInt64) throws -> [SaEntry] {
        try (1...64).filter { $0 != SIGKILL && $0 != SIGSTOP }.map { sig in
            var sa = SaEntry()
            sa.sigaction = 0; sa.flags = 0; sa.restorer = 0; sa.mask = 0
            guard handled & (1 << UInt64(sig - 1)) != 0 else { return sa }
            try task.call("rt_sigaction(\(sig))", SyscallNumber.rtSigaction, UInt64(sig), 0, task.data, 8)
            let w = try task.readWords(task.data, count: 4)
            sa.sigaction = w[0]; sa.flags = w[1]; sa.restorer = w[2]; sa.mask = w[3]
            return sa
        }
    }

    /// ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF.
    static func itimers(of task: TaskControl) throws -> TaskTimersEntry {
        var timers = TaskTimersEntry()
        for which in 0..<3 {
            try task.call("getitimer(\(which))", SyscallNumber.getitimer, UInt64(which), task.data)
            let v = try task.readWords(task.data, count: 4)
            var it = ItimerEntry()
            it.isec = v[0]; it.iusec = v[1]; it.vsec = v[2]; it.vusec = v[3]
            switch which { case 0: timers.real = it; case 1: timers.virt = it; default: timers.prof = it }
        }
        return timers
    }

    /// What each thread keeps for itself: its clear-tid address, alternate signal stack
    /// and parent-death signal.
    static func threadState(of task: TaskControl, tid: Int32) throws -> (clearTid: UInt64, sas: ThreadSasEntry, pdeathSig: UInt32) {
        try task.call("prctl(PR_GET_TID_ADDRESS)", on: tid, SyscallNumber.prctl, 40, task.data)
        let clearTid = try task.readValue(task.data, as: UInt64.self)
        try task.call("sigaltstack", on: tid, SyscallNumber.sigaltstack, 0, task.data)
        let ss = try task.read(task.data, count: 24)
        var sas = ThreadSasEntry()
        sas.ssSp = ss.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self) }
        sas.ssFlags = ss.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self) }
        sas.ssSize = ss.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: UInt64.self) }
        try task.call("prctl(PR_GET_PDEATHSIG)", on: tid, SyscallNumber.prctl, 2, task.data)
        return (clearTid, sas, try task.readValue(task.data, as: UInt32.self))
    }

    /// A zombie: only its exit code and identity are left.
    static func zombie(_ process: FrozenTree.Process) -> CoreEntry {
        var core = CoreEntry()
        core.mtype = .x8664
        var tc = TaskCoreEntry()
        // TASK_DEAD, as CRIU writes a zombie (its restore wants kernel ids for any other state).
        tc.taskState = TaskState.dead
        tc.exitCode = UInt32(bitPattern: process.stat.exitCode)
        tc.personality = 0
        tc.flags = process.stat.flags
        tc.blkSigset = 0
        tc.comm = process.stat.comm
        core.tc = tc
        return core
    }

    static func creds(_ s: TaskStatus) -> CredsEntry {
        var c = CredsEntry()
        c.uid = s.uid[0]; c.euid = s.uid[1]; c.suid = s.uid[2]; c.fsuid = s.uid[3]
        c.gid = s.gid[0]; c.egid = s.gid[1]; c.sgid = s.gid[2]; c.fsgid = s.gid[3]
        func words(_ v: UInt64) -> [UInt32] { [UInt32(v & 0xffff_ffff), UInt32(v >> 32)] }
        c.capInh = words(s.capInh); c.capPrm = words(s.capPrm); c.capEff = words(s.capEff)
        c.capBnd = words(s.capBnd); c.capAmb = words(s.capAmb)
        c.secbits = 0
        c.groups = s.groups
        c.noNewPrivs = s.noNewPrivs ? 1 : 0
        return c
    }
}
