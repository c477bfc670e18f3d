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
        var wide = TaskWide()
        try probe.inject(on: main) { task in
            wide = try taskWide(of: task, handled: handled)
            wide.timers.posix = try PosixTimersDump.collect(process, task: task)
        }
        out.sigactions = wide.sigactions
        out.brk = wide.brk
        out.dumpable = wide.dumpable

        var tc = TaskCoreEntry()
        tc.taskState = process.wasStopped ? TaskState.stopped : TaskState.alive
        // The parent's wait reports the stop signal (WSTOPSIG): SIGTSTP is not SIGSTOP.
        if process.wasStopped { tc.stopSigno = UInt32(tree.stopSignal(pid) ?? SIGSTOP) }
        tc.exitCode = 0
        tc.personality = UInt32(try readProcFile("/proc/\(pid)/personality").trimmingCharacters(in: .whitespacesAndNewlines), radix: 16) ?? 0
        tc.flags = process.stat.flags
        tc.blkSigset = try probe.originalMask(main)
        tc.comm = process.stat.comm
        tc.timers = wide.timers
        tc.rlimits = try ResourceLimits.read(pid)
        tc.childSubreaper = wide.subreaper
        if wide.membarriers > 0 { tc.membarrierRegistrationMask = UInt32(wide.membarriers) }
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
            var secbits: UInt32 = 0
            let tstatus = try tree.status(pid, tid: tid)
            let tstat = tid == pid ? process.stat : try TaskStat.read(pid: pid, tid: tid)
            try probe.inject(on: tid) { task in
                (info.clearTidAddr_p, tcore.sas, tcore.pdeathSig, secbits) = try threadState(of: task, tid: tid)
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
            tcore.creds.secbits = secbits
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

    /// What the main thread is asked for the whole task, in one batch.
    struct TaskWide {
        var sigactions: [SaEntry] = []
        var timers = TaskTimersEntry()
        var brk: UInt64 = 0
        var dumpable: UInt32 = 0
        var subreaper = false
        /// MEMBARRIER_CMD_GET_REGISTRATIONS (Linux 6.3): the REGISTER_* commands this mm
        /// took; negative where the kernel cannot tell.
        var membarriers: Int64 = -1
    }

    /// Sigactions, one per signal but SIGKILL and SIGSTOP, asked only for the signals /proc
    /// says are caught or ignored (and SIGCHLD, whose default differs); ITIMER_REAL,
    /// ITIMER_VIRTUAL and ITIMER_PROF; brk, dumpable, child-subreaper and membarrier
    /// registrations. Each answer has its own place in the data area.
    static func taskWide(of task: TaskControl, handled: UInt64) throws -> TaskWide {
        let signals = (1...64).filter { $0 != SIGKILL && $0 != SIGSTOP }
        let asked = signals.filter { handled & (1 << UInt64($0 - 1)) != 0 }
        let timersAt = task.data + 2048, subreaperAt = task.data + 2144
        var calls = asked.indices.map { i in (nr: SyscallNumber.rtSigaction, args: [UInt64(asked[i]), 0, task.data + UInt64(i * 32), 8]) }
        calls += (0..<3).map { (SyscallNumber.getitimer, [UInt64($0), timersAt + UInt64($0 * 32)]) }
        calls += [(SyscallNumber.brk, [0]), (SyscallNumber.prctl, [3]), (SyscallNumber.prctl, [37, subreaperAt]),
                  (SyscallNumber.membarrier, [1 << 9, 0, 0])]
        let names = asked.map { "rt_sigaction(\($0))" } + (0..<3).map { "getitimer(\($0))" } + ["brk(0)", "prctl(PR_GET_DUMPABLE)", "prctl(PR_GET_CHILD_SUBREAPER)"]
        let r = try task.ask(on: nil, calls)
        for (name, result) in zip(names, r) where result < 0 && result > -4096 {
            throw CheckpointError.errno("\(name) in pid \(task.pid)", Int32(-result))
        }
        var out = TaskWide()
        let sa = try task.readWords(task.data, count: asked.count * 4)
        out.sigactions = signals.map { sig in
            var e = SaEntry()
            e.sigaction = 0; e.flags = 0; e.restorer = 0; e.mask = 0
            guard let i = asked.firstIndex(of: sig) else { return e }
            e.sigaction = sa[i * 4]; e.flags = sa[i * 4 + 1]; e.restorer = sa[i * 4 + 2]; e.mask = sa[i * 4 + 3]
            return e
        }
        let v = try task.readWords(timersAt, count: 12)
        func timer(_ which: Int) -> ItimerEntry {
            var it = ItimerEntry()
            it.isec = v[which * 4]; it.iusec = v[which * 4 + 1]; it.vsec = v[which * 4 + 2]; it.vusec = v[which * 4 + 3]
            return it
        }
        out.timers.real = timer(0); out.timers.virt = timer(1); out.timers.prof = timer(2)
        let n = asked.count + 3
        out.brk = UInt64(bitPattern: r[n])
        out.dumpable = UInt32(truncatingIfNeeded: r[n + 1])
        out.subreaper = try task.readValue(subreaperAt, as: UInt32.self) != 0
        out.membarriers = r[n + 3]
        return out
    }

    /// What each thread keeps for itself: its clear-tid address, alternate signal stack,
    /// parent-death signal and securebits (keep-caps, no-setuid-fixup..., not in /proc).
    static func threadState(of task: TaskControl, tid: Int32) throws -> (clearTid: UInt64, sas: ThreadSasEntry, pdeathSig: UInt32, secbits: UInt32) {
        let names = ["prctl(PR_GET_TID_ADDRESS)", "sigaltstack", "prctl(PR_GET_PDEATHSIG)", "prctl(PR_GET_SECUREBITS)"]
        let r = try task.askAll(on: tid, { names[$0] }, [
            (SyscallNumber.prctl, [40, task.data]), (SyscallNumber.sigaltstack, [0, task.data + 8]),
            (SyscallNumber.prctl, [2, task.data + 32]), (SyscallNumber.prctl, [27]),
        ])
        let out = try task.read(task.data, count: 40)
        func word<T>(_ at: Int, _ t: T.Type) -> T { out.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: T.self) } }
        var sas = ThreadSasEntry()
        sas.ssSp = word(8, UInt64.self)
        sas.ssFlags = word(16, UInt32.self)
        sas.ssSize = word(24, UInt64.self)
        return (word(0, UInt64.self), sas, word(32, UInt32.self), UInt32(truncatingIfNeeded: r[3]))
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
