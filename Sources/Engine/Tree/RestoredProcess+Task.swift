import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

extension RestoredProcess {
    /// Process-wide state: sigactions, itimers, rlimits, personality, mm fields and prctls.
    func restoreTaskState(resources: RestoreResources, pidfd: Int32) throws {
        let tc = image.main.tc
        for (index, sa) in image.sigactions.enumerated() {
            let sig = Self.dumpedSignals[index]
            guard RestoredProcess.restorerSigaction(sig) != [sa.sigaction, sa.flags, sa.restorer, sa.mask] else { continue }
            let act = try put([sa.sigaction, sa.flags, sa.restorer, sa.mask].flatMap(bytes), at: 0)
            try call("rt_sigaction(\(sig))", SyscallNumber.rtSigaction, UInt64(sig), act, 0, 8)
        }
        let timers = [tc.timers.real, tc.timers.virt, tc.timers.prof]
        for (which, t) in timers.enumerated() where t.isec != 0 || t.iusec != 0 || t.vsec != 0 || t.vusec != 0 {
            // A periodic timer caught between expiry and re-arming (its signal pending)
            // shows value 0, and setitimer with value 0 would drop its interval: arm it
            // one interval ahead instead; the pending signal is restored on its own.
            let (vsec, vusec) = t.vsec == 0 && t.vusec == 0 ? (t.isec, t.iusec) : (t.vsec, t.vusec)
            let value = try put([t.isec, t.iusec, vsec, vusec].flatMap(bytes), at: 0)
            try call("setitimer(\(which))", SyscallNumber.setitimer, UInt64(which), value, 0)
        }
        for (res, lim) in tc.rlimits.rlimits.enumerated() {
            var l: (UInt64, UInt64) = (lim.cur, lim.max)
            let r = withUnsafeMutablePointer(to: &l) { oc_syscall(SyscallNumber.prlimit64, Int(hostPid), res, Int(bitPattern: $0), 0, 0, 0) }
            if r < 0 { throw CheckpointError.errno("prlimit \(res) of pid \(pid) to \(lim.cur)/\(lim.max)", Int32(-r)) }
        }
        if tc.personality != 0 { try call("personality", SyscallNumber.personality, UInt64(tc.personality)) }
        try restoreMM(resources: resources, pidfd: pidfd)
        try call("prctl(PR_SET_DUMPABLE)", SyscallNumber.prctl, 4, UInt64(max(image.mm.dumpable, 0)))
        if tc.childSubreaper { try call("prctl(PR_SET_CHILD_SUBREAPER)", SyscallNumber.prctl, 36, 1) }
        if tc.hasOomScoreAdj {
            try? "\(tc.oomScoreAdj)".write(toFile: "/proc/\(hostPid)/oom_score_adj", atomically: false, encoding: .utf8)
        }
    }

    /// Signals as TaskDump lists them in sigacts-PID.img: 1...64 without SIGKILL and SIGSTOP.
    static let dumpedSignals: [Int32] = (1...64).filter { $0 != SIGKILL && $0 != SIGSTOP }

    static func restorerSigaction(_ sig: Int32) -> [UInt64] {
        var old = [UInt64](repeating: 0, count: 4)
        _ = old.withUnsafeMutableBytes { oc_syscall(SyscallNumber.rtSigaction, Int(sig), 0, Int(bitPattern: $0.baseAddress), 8, 0, 0) }
        return old
    }

    private func restoreMM(resources: RestoreResources, pidfd: Int32) throws {
        let mm = image.mm
        let exe = try takeFd(try resources.fd(for: mm.exeFileID), pidfd: pidfd)
        let auxvBytes = mm.mmSavedAuxv.flatMap(bytes)
        let auxv = try put(auxvBytes, at: 1024)
        var map = [mm.mmStartCode, mm.mmEndCode, mm.mmStartData, mm.mmEndData, mm.mmStartBrk, mm.mmBrk,
                   mm.mmStartStack, mm.mmArgStart, mm.mmArgEnd, mm.mmEnvStart, mm.mmEnvEnd, auxv].flatMap(bytes)
        map += bytes(UInt32(auxvBytes.count)) + bytes(UInt32(exe))
        let addr = try put(map, at: 0)
        try call("prctl(PR_SET_MM_MAP)", SyscallNumber.prctl, 35, 14, addr, UInt64(map.count), 0)
        try call("close", SyscallNumber.close, UInt64(exe))
    }

    /// Creates the other threads of this process with their original TIDs.
    func createThreads() throws {
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
        if tcore.hasRseqEntry {
            let r = tcore.rseqEntry
            try call("rseq", on: tid, SyscallNumber.rseq, r.rseqAbiPointer, UInt64(r.rseqAbiSize), 0, UInt64(r.signature))
        }
        try call("set_tid_address", on: tid, SyscallNumber.setTidAddress, core.threadInfo.clearTidAddr_p)
        if tcore.futexRla != 0 {
            try call("set_robust_list", on: tid, SyscallNumber.setRobustList, tcore.futexRla, UInt64(tcore.futexRlaLen))
        }
        let sas = tcore.sas
        let ss = try put(bytes(sas.ssSp) + bytes(sas.ssFlags & ~1 /* SS_ONSTACK is read-only */) + bytes(UInt32(0)) + bytes(sas.ssSize), at: 0)
        try call("sigaltstack", on: tid, SyscallNumber.sigaltstack, ss, 0)
        // The root's parent is the restorer (or runc), never the one it had: its pdeath
        // signal would fire when the restorer leaves. Tasks whose parent is restored keep it.
        if tcore.pdeathSig != 0 && image.entry.ppid != 0 {
            try call("prctl(PR_SET_PDEATHSIG)", on: tid, SyscallNumber.prctl, 1, UInt64(tcore.pdeathSig))
        }
        if tcore.hasComm {
            let name = try put(Array(tcore.comm.utf8.prefix(15)) + [0], at: 0)
            try call("prctl(PR_SET_NAME)", on: tid, SyscallNumber.prctl, 15, name)
        }
        // Queued from the main thread: the kernel lets a task queue kernel-style siginfo only to itself.
        for s in tcore.signalsP.signals {
            let info = try put([UInt8](s.siginfo), at: 0)
            let signo = s.siginfo.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
            try call("rt_tgsigqueueinfo(\(signo)) to \(vtid)", SyscallNumber.rtTgsigqueueinfo, UInt64(pid), UInt64(vtid), UInt64(signo), info)
        }
        if vtid == pid {
            for s in core.tc.signalsS.signals {
                let info = try put([UInt8](s.siginfo), at: 0)
                let signo = s.siginfo.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
                try call("rt_sigqueueinfo(\(signo))", SyscallNumber.rtSigqueueinfo, UInt64(pid), UInt64(signo), info)
            }
        }
        // Scheduling is set from outside, on the thread's host tid.
        if tcore.schedPolicy != 0 {
            var prio = Int32(tcore.schedPrio)
            let r = withUnsafeMutablePointer(to: &prio) { oc_syscall(144 /* sched_setscheduler */, Int(tid), Int(tcore.schedPolicy), Int(bitPattern: $0), 0, 0, 0) }
            if r < 0 { throw CheckpointError.errno("sched_setscheduler of tid \(vtid) to policy \(tcore.schedPolicy)", Int32(-r)) }
        }
        if tcore.schedNice != 0 {
            let r = oc_syscall(141 /* setpriority */, 0 /* PRIO_PROCESS */, Int(tid), Int(tcore.schedNice), 0, 0, 0)
            if r < 0 { throw CheckpointError.errno("setpriority of tid \(vtid) to \(tcore.schedNice)", Int32(-r)) }
        }
        var xstate = try Ptrace(tid).xstate()
        core.threadInfo.fpregs.apply(to: &xstate)
        try Ptrace(tid).setXstate(xstate)
    }

    /// Credentials and seccomp filters, the thread's last injected syscalls. A filter may
    /// forbid the syscalls that set credentials, so it goes last, unless the thread ends up
    /// with neither CAP_SYS_ADMIN nor no_new_privs, which installing a filter needs.
    func restoreCredentialsAndFilters(_ thread: (virtual: Int32, host: Int32), filters: [SeccompFilter]) throws {
        guard let creds = image.cores[thread.virtual]?.threadCore.creds else { return }
        let canInstallFilters = creds.noNewPrivs != 0 || Self.caps(creds.capEff) & (1 << 21 /* CAP_SYS_ADMIN */) != 0
        if canInstallFilters {
            try restoreCreds(thread.host, creds)
            try restoreSeccomp(thread, filters: filters)
        } else {
            try restoreSeccomp(thread, filters: filters)
            try restoreCreds(thread.host, creds)
        }
    }

    /// Installs the thread's seccomp filters, oldest first. Last of all injected syscalls
    /// of the thread, since a filter may forbid the ones we use.
    func restoreSeccomp(_ thread: (virtual: Int32, host: Int32), filters: [SeccompFilter]) throws {
        let (vtid, tid) = thread
        guard var tcore = image.cores[vtid]?.threadCore else { return }
        // CRIU saves threads that share the leader's filters with none of their own and
        // marks the leader's TSYNC: its restore lets the leader's install reach them.
        let leader = image.main.threadCore
        if tcore.seccompMode != .filter, leader.seccompMode == .filter, Int(leader.seccompFilter) < filters.count,
           filters[Int(leader.seccompFilter)].flags & 1 /* SECCOMP_FILTER_FLAG_TSYNC */ != 0 {
            tcore = leader
        }
        guard tcore.seccompMode == .filter else { return }
        var chain: [SeccompFilter] = []
        var index: UInt32? = tcore.seccompFilter
        while let i = index {
            guard Int(i) < filters.count, chain.count <= filters.count else {
                throw CheckpointError(.image, "seccomp.img: tid \(vtid) names filter \(i), which is not there")
            }
            chain.insert(filters[Int(i)], at: 0)
            index = filters[Int(i)].hasPrev ? filters[Int(i)].prev : nil
        }
        for f in chain {
            let program = try put([UInt8](f.filter), at: 4096)
            let fprog = try put(bytes(UInt16(f.filter.count / 8)) + [UInt8](repeating: 0, count: 6) + bytes(program), at: 0)
            // TSYNC is dropped: each thread gets its chain installed by itself.
            try call("seccomp(SET_MODE_FILTER)", on: tid, SyscallNumber.seccomp, 1, UInt64(f.flags & ~1), fprog)
        }
    }

    /// The stub has the restorer's credentials; a thread whose dumped ones are the same
    /// (root with every capability, the common case) needs no change.
    private func restoreCreds(_ tid: Int32, _ c: CredsEntry) throws {
        if c.noNewPrivs != 0 { try call("prctl(PR_SET_NO_NEW_PRIVS)", on: tid, SyscallNumber.prctl, 38, 1, 0, 0, 0) }
        let ids = [c.uid, c.euid, c.suid, c.fsuid, c.gid, c.egid, c.sgid, c.fsgid]
        guard let ours = Self.restorerStatus else {
            throw CheckpointError(.kernel, "cannot read /proc/self/status of the restorer for its capability sets")
        }
        let sameCaps = Self.caps(c.capEff) == ours.capEff && Self.caps(c.capPrm) == ours.capPrm
            && Self.caps(c.capInh) == ours.capInh && Self.caps(c.capBnd) == ours.capBnd && Self.caps(c.capAmb) == ours.capAmb
        guard ids.contains(where: { $0 != 0 }) || !sameCaps || !c.groups.isEmpty else { return }
        // The bounding set first: dropping from it needs CAP_SETPCAP, which the stub still has.
        let bounding = Self.caps(c.capBnd)
        for cap in 0..<64 where ours.capBnd & (1 << cap) != 0 && bounding & (1 << cap) == 0 {
            try call("prctl(PR_CAPBSET_DROP, \(cap))", on: tid, SyscallNumber.prctl, 24, UInt64(cap))
        }
        let groups = try put(c.groups.flatMap(bytes), at: 0)
        try call("setgroups", on: tid, SyscallNumber.setgroups, UInt64(c.groups.count), groups)
        try call("prctl(PR_SET_KEEPCAPS)", on: tid, SyscallNumber.prctl, 8, 1)
        try call("setresgid", on: tid, SyscallNumber.setresgid, UInt64(c.gid), UInt64(c.egid), UInt64(c.sgid))
        try call("setresuid", on: tid, SyscallNumber.setresuid, UInt64(c.uid), UInt64(c.euid), UInt64(c.suid))
        let header = try put(bytes(UInt32(0x2008_0522)) + bytes(Int32(0)), at: 0)
        let capData = (0..<2).flatMap { i in bytes(c.capEff[safe: i]) + bytes(c.capPrm[safe: i]) + bytes(c.capInh[safe: i]) }
        let dataAddr = try put(capData, at: 64)
        try call("capset", on: tid, SyscallNumber.capset, header, dataAddr)
        let ambient = Self.caps(c.capAmb)
        for cap in 0..<64 where ambient & (1 << cap) != 0 {
            try call("prctl(PR_CAP_AMBIENT_RAISE, \(cap))", on: tid, SyscallNumber.prctl, 47, 2, UInt64(cap), 0, 0)
        }
    }

    static func caps(_ words: [UInt32]) -> UInt64 { UInt64(words[safe: 0]) | UInt64(words[safe: 1]) << 32 }

    /// The restorer's credentials, which every stub starts with; read once per restore process.
    private static let restorerStatus: TaskStatus? = try? TaskStatus.read(pid: getpid())

    /// Last step inside the process: unmap the stub through a syscall that the main thread
    /// executes from the stub itself, and stop it at the syscall's exit to give it its
    /// dumped registers. Other threads just get their registers.
    func finish() throws {
        for (vtid, tid) in threads where vtid != pid {
            try Ptrace(tid).setRegisters(Self.resumable(image.cores[vtid]!.threadInfo.gpregs.registers))
        }
        let ptrace = Ptrace(hostPid)
        var regs = try ptrace.registers()
        regs.rax = UInt64(SyscallNumber.munmap); regs.orig_rax = UInt64.max
        regs.rdi = stub; regs.rsi = Self.stubSize; regs.rip = stub
        try ptrace.setRegisters(regs)
        for _ in 0..<2 {  // syscall entry, then exit
            try ptrace.syscallStep()
            guard case .stopped(let sig, _)? = try TaskEvent.wait(hostPid), sig & 0x7f == SIGTRAP else {
                throw CheckpointError(.invalidState, "pid \(pid) did not stop around the stub's munmap")
            }
        }
        let result = Int64(bitPattern: try ptrace.registers().rax)
        if result != 0 { throw CheckpointError.errno("munmap of the restore stub in pid \(pid)", Int32(-result)) }
        try ptrace.setRegisters(Self.resumable(image.main.threadInfo.gpregs.registers))
    }

    /// Registers of a task stopped inside a syscall, rewritten so that the syscall runs
    /// again on resume, as the kernel would have done had the task not been dumped.
    static func resumable(_ r: Registers) -> Registers {
        var regs = r
        let ax = Int64(bitPattern: regs.rax)
        if Int64(bitPattern: regs.orig_rax) >= 0 && [-512, -513, -514, -516].contains(ax) {
            regs.rax = regs.orig_rax
            regs.rip -= 2
        }
        regs.orig_rax = UInt64.max
        return regs
    }

    /// Zombies: the process exists only to leave its exit status to its parent. The
    /// injector, as tracer, collects the exit and so hands the zombie to its real parent.
    func becomeZombie() throws {
        let status = image.main.tc.exitCode
        let injector = try SyscallInjector(tid: hostPid, codeAddress: stub)
        if status & 0x7f == 0 {
            _ = try? injector.callRaw(SyscallNumber.exitGroup, [UInt64(status >> 8)])
        } else {
            try Ptrace(hostPid).setSigmask(0)
            _ = try? injector.callRaw(SyscallNumber.kill, [UInt64(pid), UInt64(status & 0x7f)])
        }
    }
}

func bytes<T>(_ v: T) -> [UInt8] {
    var x = v
    return withUnsafeBytes(of: &x) { Array($0) }
}

extension Array where Element == UInt32 {
    subscript(safe i: Int) -> UInt32 { i < count ? self[i] : 0 }
}
