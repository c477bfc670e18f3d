import Foundation
import LinuxKernel
import Images
import ProcFS

/// What a restore injects into a stub, decided from the images alone: written against
/// TaskControl so that a recording double shows the exact syscalls (Tests/EngineTests).
extension TaskControl {
    // MARK: - The stub's inheritance

    /// Closes every fd but `pidfd` and unmaps everything below the task size but `keep`
    /// (start, end): what the stub inherited from the restorer.
    func dropInheritance(keepingFd pidfd: Int32, keepingAreas keep: [(UInt64, UInt64)]) throws {
        if pidfd > 0 { try call("close_range", SyscallNumber.closeRange, 0, UInt64(pidfd - 1), 0) }
        try call("close_range", SyscallNumber.closeRange, UInt64(pidfd + 1), UInt64(UInt32.max), 0)
        try unmapAll(except: keep)
    }

    // MARK: - Signals, timers, limits

    /// Sets every dumped sigaction that differs from the one the stub inherited.
    /// `inherited(sig)` is the stub's own (handler, flags, restorer, mask).
    func setSigactions(_ actions: [SaEntry], inherited: (Int32) -> [UInt64]) throws {
        var calls: [InjectedCall] = []
        for (index, sa) in actions.enumerated() {
            let sig = RestoredProcess.dumpedSignals[index]
            let wanted = [sa.sigaction, sa.flags, sa.restorer, sa.mask]
            guard inherited(sig) != wanted else { continue }
            calls.append(InjectedCall(what: "rt_sigaction(\(sig))", nr: SyscallNumber.rtSigaction, args: [UInt64(sig), 0, 0, 8],
                                      data: wanted.flatMap(bytes), dataArgument: 1))
        }
        try callAll(calls)
    }

    /// Arms ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF as dumped; a disarmed one is left alone.
    func setItimers(_ timers: TaskTimersEntry) throws {
        for (which, t) in [timers.real, timers.virt, timers.prof].enumerated() where t.isec != 0 || t.iusec != 0 || t.vsec != 0 || t.vusec != 0 {
            // A periodic timer caught between expiry and re-arming (its signal pending)
            // shows value 0, and setitimer with value 0 would drop its interval: arm it
            // one interval ahead instead; the pending signal is restored on its own.
            let (vsec, vusec) = t.vsec == 0 && t.vusec == 0 ? (t.isec, t.iusec) : (t.vsec, t.vusec)
            let value = try put([t.isec, t.iusec, vsec, vusec].flatMap(bytes), at: 0)
            try call("setitimer(\(which))", SyscallNumber.setitimer, UInt64(which), value, 0)
        }
    }

    /// Sets, from inside the task (prlimit64 on itself), each resource limit that differs
    /// from the stub's, which it inherited from the restorer (`inherited`, by resource).
    func setRlimits(_ limits: [RlimitEntry], inherited: [(cur: UInt64, max: UInt64)]) throws {
        for (res, lim) in limits.enumerated() {
            if res < inherited.count && inherited[res] == (lim.cur, lim.max) { continue }
            let new = try put(bytes(lim.cur) + bytes(lim.max), at: 0)
            try call("prlimit \(res) to \(lim.cur)/\(lim.max)", SyscallNumber.prlimit64, 0, UInt64(res), new, 0)
        }
    }

    /// The mm fields /proc shows (code, data, brk, stack, args, env, auxv) and the exe
    /// link, in one PR_SET_MM_MAP; `exe` is the task's fd on the executable, closed after.
    func setMMMap(_ mm: MmEntry, exe: Int32) throws {
        let auxvBytes = mm.mmSavedAuxv.flatMap(bytes)
        let auxv = try put(auxvBytes, at: 1024)
        var map = [mm.mmStartCode, mm.mmEndCode, mm.mmStartData, mm.mmEndData, mm.mmStartBrk, mm.mmBrk,
                   mm.mmStartStack, mm.mmArgStart, mm.mmArgEnd, mm.mmEnvStart, mm.mmEnvEnd, auxv].flatMap(bytes)
        map += bytes(UInt32(auxvBytes.count)) + bytes(UInt32(exe))
        try callAll([InjectedCall(what: "prctl(PR_SET_MM_MAP)", nr: SyscallNumber.prctl, args: [35, 14, 0, UInt64(map.count), 0], data: map, dataArgument: 2),
                     InjectedCall(what: "close", nr: SyscallNumber.close, args: [UInt64(exe)])])
    }

    // MARK: - Files

    /// Puts each file at its dumped number: `take(entries)` gives the task a new fd on each
    /// entry's file, in order (each the lowest free one). Taken all at once, each usually
    /// lands on its own number already (only its close-on-exec flag may need clearing);
    /// those that do not are closed and taken again one by one, each moved by dup3 before
    /// the next is taken, so that no move lands on an fd still to be moved.
    func installFds(_ fds: [FdinfoEntry], take: ([FdinfoEntry]) throws -> [Int32]) throws {
        // Flags only: they change no fd number, so they wait for one batch at the end.
        var clearCloexec: [InjectedCall] = []
        func placed(_ e: FdinfoEntry, at t: Int32) {
            if e.flags & UInt32(FD_CLOEXEC) == 0 {
                clearCloexec.append(InjectedCall(what: "fcntl F_SETFD fd \(t)", nr: SyscallNumber.fcntl, args: [UInt64(t), UInt64(F_SETFD), 0]))
            }
        }
        let taken = Array(zip(fds, try take(fds)))
        for (e, t) in taken where t == Int32(e.fd) { placed(e, at: t) }
        let misplaced = taken.filter { $0.1 != Int32($0.0.fd) }
        try callAll(misplaced.map { InjectedCall(what: "close", nr: SyscallNumber.close, args: [UInt64($0.1)]) })
        for (e, _) in misplaced {
            let t = try take([e])[0]
            if t == Int32(e.fd) {
                placed(e, at: t)
            } else {
                let cloexec = e.flags & UInt32(FD_CLOEXEC) != 0
                try callAll([InjectedCall(what: "dup3 to fd \(e.fd)", nr: SyscallNumber.dup3, args: [UInt64(t), UInt64(e.fd), cloexec ? UInt64(O_CLOEXEC) : 0]),
                             InjectedCall(what: "close", nr: SyscallNumber.close, args: [UInt64(t)])])
            }
        }
        try callAll(clearCloexec)
    }

    /// Root, cwd and umask: fds the task holds on its root (nil when it is "/") and cwd,
    /// closed here.
    func setFs(root: Int32?, cwd: Int32, umask: UInt32) throws {
        var calls: [InjectedCall] = []
        if let r = root {
            calls += [InjectedCall(what: "fchdir root", nr: SyscallNumber.fchdir, args: [UInt64(r)]),
                      InjectedCall(what: "chroot", nr: SyscallNumber.chroot, args: [0], data: Array(".".utf8) + [0]),
                      InjectedCall(what: "close", nr: SyscallNumber.close, args: [UInt64(r)])]
        }
        calls += [InjectedCall(what: "fchdir cwd", nr: SyscallNumber.fchdir, args: [UInt64(cwd)]),
                  InjectedCall(what: "close", nr: SyscallNumber.close, args: [UInt64(cwd)]),
                  InjectedCall(what: "umask", nr: SyscallNumber.umask, args: [UInt64(umask)])]
        try callAll(calls)
    }

    // MARK: - Credentials

    /// The stub has the restorer's credentials (`ours`); a thread whose dumped ones are the same
    /// (root with every capability, the common case) needs no change.
    /// `always`: the task's ids are not the restorer's even when the images say 0 (a task in
    /// its own user namespace); `groupsInPlace`: it has its groups already (setgroups denied).
    func setCreds(_ c: CredsEntry, on tid: Int32, restorer ours: TaskStatus, always: Bool = false, groupsInPlace: Bool = false) throws {
        if c.noNewPrivs != 0 { try call("prctl(PR_SET_NO_NEW_PRIVS)", on: tid, SyscallNumber.prctl, 38, 1, 0, 0, 0) }
        let ids = [c.uid, c.euid, c.suid, c.fsuid, c.gid, c.egid, c.sgid, c.fsgid]
        let sameCaps = RestoredProcess.caps(c.capEff) == ours.capEff && RestoredProcess.caps(c.capPrm) == ours.capPrm
            && RestoredProcess.caps(c.capInh) == ours.capInh && RestoredProcess.caps(c.capBnd) == ours.capBnd && RestoredProcess.caps(c.capAmb) == ours.capAmb
        guard always || ids.contains(where: { $0 != 0 }) || !sameCaps || !c.groups.isEmpty || c.secbits != 0 else { return }
        // The bounding set first: dropping from it needs CAP_SETPCAP, which the stub still has.
        let bounding = RestoredProcess.caps(c.capBnd)
        for cap in 0..<64 where ours.capBnd & (1 << cap) != 0 && bounding & (1 << cap) == 0 {
            try call("prctl(PR_CAPBSET_DROP, \(cap))", on: tid, SyscallNumber.prctl, 24, UInt64(cap))
        }
        if !groupsInPlace {
            let groups = try put(c.groups.flatMap(bytes), at: 0)
            try call("setgroups", on: tid, SyscallNumber.setgroups, UInt64(c.groups.count), groups)
        }
        // Capabilities survive the uid change through keep-caps; the dumped securebits are
        // set while the stub still has CAP_SETPCAP, keep-caps cleared after unless dumped.
        let keepCaps: UInt64 = 1 << 4
        if c.secbits != 0 {
            try call("prctl(PR_SET_SECUREBITS, \(c.secbits))", on: tid, SyscallNumber.prctl, 28, UInt64(c.secbits) | keepCaps)
        } else {
            try call("prctl(PR_SET_KEEPCAPS)", on: tid, SyscallNumber.prctl, 8, 1)
        }
        try call("setresgid", on: tid, SyscallNumber.setresgid, UInt64(c.gid), UInt64(c.egid), UInt64(c.sgid))
        try call("setresuid", on: tid, SyscallNumber.setresuid, UInt64(c.uid), UInt64(c.euid), UInt64(c.suid))
        let header = try put(bytes(UInt32(0x2008_0522)) + bytes(Int32(0)), at: 0)
        let capData = (0..<2).flatMap { i in bytes(c.capEff[safe: i]) + bytes(c.capPrm[safe: i]) + bytes(c.capInh[safe: i]) }
        let dataAddr = try put(capData, at: 64)
        try call("capset", on: tid, SyscallNumber.capset, header, dataAddr)
        let ambient = RestoredProcess.caps(c.capAmb)
        for cap in 0..<64 where ambient & (1 << cap) != 0 {
            try call("prctl(PR_CAP_AMBIENT_RAISE, \(cap))", on: tid, SyscallNumber.prctl, 47, 2, UInt64(cap), 0, 0)
        }
        if UInt64(c.secbits) & keepCaps == 0 { try call("prctl(PR_SET_KEEPCAPS, 0)", on: tid, SyscallNumber.prctl, 8, 0) }
    }

    // MARK: - Threads

    /// What thread `tid` (`vtid` in the images) sets from inside: rseq, clear-tid address,
    /// robust list, altstack, parent-death signal, name, then its pending signals (and the
    /// process's shared ones, with the main thread).
    func setThreadState(_ core: CoreEntry, vtid: Int32, on tid: Int32, parentRestored: Bool) throws {
        let tcore = core.threadCore
        var calls: [InjectedCall] = []
        if tcore.hasRseqEntry {
            let r = tcore.rseqEntry
            calls.append(InjectedCall(what: "rseq", nr: SyscallNumber.rseq, args: [r.rseqAbiPointer, UInt64(r.rseqAbiSize), 0, UInt64(r.signature)]))
        }
        calls.append(InjectedCall(what: "set_tid_address", nr: SyscallNumber.setTidAddress, args: [core.threadInfo.clearTidAddr_p]))
        if tcore.futexRla != 0 {
            calls.append(InjectedCall(what: "set_robust_list", nr: SyscallNumber.setRobustList, args: [tcore.futexRla, UInt64(tcore.futexRlaLen)]))
        }
        let sas = tcore.sas
        calls.append(InjectedCall(what: "sigaltstack", nr: SyscallNumber.sigaltstack, args: [0, 0],
                                  data: bytes(sas.ssSp) + bytes(sas.ssFlags & ~1 /* SS_ONSTACK is read-only */) + bytes(UInt32(0)) + bytes(sas.ssSize), dataArgument: 0))
        // The root's parent is the restorer (or runc), never the one it had: its pdeath
        // signal would fire when the restorer leaves. Tasks whose parent is restored keep it.
        if tcore.pdeathSig != 0 && parentRestored {
            calls.append(InjectedCall(what: "prctl(PR_SET_PDEATHSIG)", nr: SyscallNumber.prctl, args: [1, UInt64(tcore.pdeathSig)]))
        }
        if tcore.hasComm {
            calls.append(InjectedCall(what: "prctl(PR_SET_NAME)", nr: SyscallNumber.prctl, args: [15, 0], data: Array(tcore.comm.utf8.prefix(15)) + [0], dataArgument: 1))
        }
        try callAll(on: tid, calls)
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
    }

    // MARK: - Seccomp

    /// The indexes of the chain of filters that starts at `first` (the thread's, in
    /// seccomp.img), in the order to install them: CRIU links each filter to the next
    /// newer one through `prev` (see SeccompDump).
    func seccompChain(_ filters: [SeccompFilter], first: UInt32, vtid: Int32) throws -> [Int] {
        var chain: [Int] = []
        var index: UInt32? = first
        while let i = index {
            guard Int(i) < filters.count, chain.count <= filters.count else {
                throw CheckpointError(.image, "seccomp.img: tid \(vtid) names filter \(i), which is not there")
            }
            chain.append(Int(i))
            index = filters[Int(i)].hasPrev ? filters[Int(i)].prev : nil
        }
        return chain
    }

    /// Installs on thread `tid` the chain of filters that starts at `first`, oldest first,
    /// but the first `skipping`, which the thread already shares.
    func installSeccomp(_ filters: [SeccompFilter], first: UInt32, vtid: Int32, on tid: Int32, skipping: Int = 0) throws {
        for f in try seccompChain(filters, first: first, vtid: vtid).dropFirst(skipping) {
            try installFilter(filters[f], on: tid)
        }
    }

    /// One filter on thread `tid`. TSYNC is dropped: each thread gets its chain itself.
    func installFilter(_ f: SeccompFilter, on tid: Int32) throws {
        let program = try put([UInt8](f.filter), at: 4096)
        let fprog = try put(bytes(UInt16(f.filter.count / 8)) + [UInt8](repeating: 0, count: 6) + bytes(program), at: 0)
        try call("seccomp(SET_MODE_FILTER)", on: tid, SyscallNumber.seccomp, 1, UInt64(f.flags & ~1), fprog)
    }
}
