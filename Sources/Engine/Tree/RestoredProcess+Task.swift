import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

extension RestoredProcess {
    /// Process-wide state: sigactions, itimers, rlimits, personality, mm fields and prctls.
    func restoreTaskState(resources: RestoreResources, pidfd: Int32) throws {
        let tc = image.main.tc
        try setSigactions(image.sigactions, inherited: Self.restorerSigaction)
        try setItimers(tc.timers)
        try setRlimits(tc.rlimits.rlimits, inherited: resources.session.inheritedRlimits)
        if tc.personality != 0 { try call("personality", SyscallNumber.personality, UInt64(tc.personality)) }
        try setMMMap(image.mm, exe: try takeFd(try resources.fd(for: image.mm.exeFileID), pidfd: pidfd))
        try call("prctl(PR_SET_DUMPABLE)", SyscallNumber.prctl, 4, UInt64(max(image.mm.dumpable, 0)))
        if tc.childSubreaper { try call("prctl(PR_SET_CHILD_SUBREAPER)", SyscallNumber.prctl, 36, 1) }
        try restoreLoginuid(pidfd: pidfd)
        try restoreMembarriers(tc.membarrierRegistrationMask)
        if tc.hasOomScoreAdj {
            try? writeProcFile("/proc/\(hostPid)/oom_score_adj", "\(tc.oomScoreAdj)")
        }
    }

    /// Signals as TaskDump lists them in sigacts-PID.img: 1...64 without SIGKILL and SIGSTOP.
    static let dumpedSignals: [Int32] = (1...64).filter { $0 != SIGKILL && $0 != SIGSTOP }

    static func restorerSigaction(_ sig: Int32) -> [UInt64] { restorerSigactions[sig] ?? [] }

    /// Ours, read once (they do not change during a restore): a tree of 200 asked ~12000 times.
    private static let restorerSigactions: [Int32: [UInt64]] = Dictionary(uniqueKeysWithValues: dumpedSignals.map { sig in
        var old = [UInt64](repeating: 0, count: 4)
        _ = old.withUnsafeMutableBytes { Syscall.result(SyscallNumber.rtSigaction, Int(sig), 0, Int(bitPattern: $0.baseAddress), 8) }
        return (sig, old)
    })

    /// Creates the other threads of this process with their original TIDs, after the
    /// seccomp filters every thread shares, which they inherit as shared filters.
    func createThreads(filters: [SeccompFilter]) throws {
        try installSharedSeccomp(filters)
        for tid in image.entry.threads.map({ Int32($0) }) where tid != pid {
            try createChild(pid: tid, thread: true)
        }
    }

    /// Per-thread state that is set from inside: rseq, tid address, robust list, altstack,
    /// pdeath signal, name, pending signals, credentials.
    func restoreThreadState(_ thread: (virtual: Int32, host: Int32)) throws {
        let (vtid, tid) = thread
        guard let core = image.cores[vtid] else { return }
        let tcore = core.threadCore
        try setThreadState(core, vtid: vtid, on: tid, parentRestored: image.entry.ppid != 0)
        try ThreadScheduling.apply(tcore, tid: tid, vtid: vtid)
        var xstate = try Ptrace(tid).xstate()
        core.threadInfo.fpregs.apply(to: &xstate)
        try Ptrace(tid).setXstate(xstate)
    }

    /// Credentials and seccomp filters, the thread's last injected syscalls. A filter may
    /// forbid the syscalls that set credentials, so it goes last, unless the thread ends up
    /// with neither CAP_SYS_ADMIN nor no_new_privs, which installing a filter needs.
    func restoreCredentialsAndFilters(_ thread: (virtual: Int32, host: Int32), filters: [SeccompFilter], restorer: TaskStatus?) throws {
        guard let creds = image.cores[thread.virtual]?.threadCore.creds else { return }
        guard let restorer else {
            throw CheckpointError(.kernel, "cannot read /proc/self/status of the restorer for its capability sets")
        }
        let canInstallFilters = creds.noNewPrivs != 0 || Self.caps(creds.capEff) & (1 << 21 /* CAP_SYS_ADMIN */) != 0
        let groupsInPlace = try userNamespace?.groupsInPlace(creds.groups, pid: pid, host: thread.host, hostPid: hostPid) ?? false
        let set = { try self.setCreds(creds, on: thread.host, restorer: restorer, always: self.userNamespace != nil, groupsInPlace: groupsInPlace) }
        if canInstallFilters {
            try set()
            try restoreSeccomp(thread, filters: filters)
        } else {
            try restoreSeccomp(thread, filters: filters)
            try set()
        }
        // A change of uid or gid makes the mm non-dumpable (suid_dumpable): set it again.
        try call("prctl(PR_SET_DUMPABLE)", on: thread.host, SyscallNumber.prctl, 4, UInt64(max(image.mm.dumpable, 0)))
    }

    /// What the restorer traces its stubs with.
    static let tracing = Ptrace.optExitKill | Ptrace.optTraceClone | Ptrace.optTraceFork | Ptrace.optTraceVfork | Ptrace.optTraceSysGood

    static func caps(_ words: [UInt32]) -> UInt64 { UInt64(words[safe: 0]) | UInt64(words[safe: 1]) << 32 }

    /// Last step inside each process: unmap the stub through a syscall that the main
    /// thread executes from the stub itself, and stop it at the syscall's exit to give it
    /// its dumped registers. Other threads just get their registers. Each step is asked of
    /// every process before any is waited for: the munmaps run side by side, and the
    /// restorer never waits for one task's round trip at a time (2 per process).
    static func finishAll(_ processes: [RestoredProcess]) throws {
        for p in processes {
            for (vtid, tid) in p.threads where vtid != p.pid {
                try Ptrace(tid).setRegisters(resumable(p.image.cores[vtid]!.threadInfo.gpregs.registers))
            }
            let ptrace = Ptrace(p.hostPid)
            var regs = try ptrace.registers()
            regs.rax = UInt64(SyscallNumber.munmap); regs.orig_rax = UInt64.max
            regs.rdi = p.stub; regs.rsi = stubSize; regs.rip = p.stub
            try ptrace.setRegisters(regs)
            try ptrace.syscallStep()
        }
        for p in processes {  // syscall entry
            try p.awaitSyscallStop()
            try Ptrace(p.hostPid).syscallStep()
        }
        for p in processes {  // syscall exit
            try p.awaitSyscallStop()
            let ptrace = Ptrace(p.hostPid)
            let result = Int64(bitPattern: try ptrace.registers().rax)
            if result != 0 { throw CheckpointError.errno("munmap of the restore stub in pid \(p.pid)", Int32(-result)) }
            try ptrace.setRegisters(resumable(p.image.main.threadInfo.gpregs.registers))
        }
    }

    private func awaitSyscallStop() throws {
        guard case .stopped(let sig, _)? = try TaskEvent.wait(hostPid), sig & 0x7f == SIGTRAP else {
            throw CheckpointError(.invalidState, "pid \(pid) did not stop around the stub's munmap")
        }
    }

    /// Registers of a task stopped inside a syscall, rewritten so that the syscall runs
    /// again on resume, as the kernel would have done had the task not been dumped.
    static func resumable(_ r: Registers) -> Registers {
        // Images of CRIU and of older builds of ours keep the stopped syscall's result.
        var regs = r.rewoundToRestartSyscall
        regs.orig_rax = UInt64.max
        return regs
    }
}

extension Array where Element == UInt32 {
    subscript(safe i: Int) -> UInt32 { i < count ? self[i] : 0 }
}
