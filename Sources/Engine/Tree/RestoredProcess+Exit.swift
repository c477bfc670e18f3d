import Foundation
import LinuxKernel
import Images
import ProcFS

/// How a process leaves the restore: let go running or stopped with its own stop signal,
/// or dead, leaving its parent the wait status it had (exit code, signal, core flag).
extension RestoredProcess {
    /// The signal the process was stopped with (what its parent's wait reports), nil
    /// when it was running. Images without stop_signo (CRIU before 3.x, ours before) say SIGSTOP.
    var stopSignal: Int32? {
        let tc = image.main.tc
        guard tc.taskState == TaskState.stopped else { return nil }
        return tc.hasStopSigno && tc.stopSigno != 0 ? Int32(tc.stopSigno) : SIGSTOP
    }

    /// Detaches every thread; a stopped process gets its stop signal through a thread that
    /// does not block it (the kernel sends it as the thread leaves its syscall stop).
    func letGo() throws {
        let stop = stopSignal
        let taker = stop.flatMap { sig in
            threads.first { image.blockedSignals($0.virtual) & (1 << UInt64(sig - 1)) == 0 }?.host
        } ?? hostPid
        for (_, tid) in threads { try Ptrace(tid).detach(signal: tid == taker ? stop ?? 0 : 0) }
    }

    /// Zombies: the process exists only to leave its wait status to its parent. The
    /// injector, as tracer, collects the exit and so hands the zombie to its real parent.
    /// `pidfd` is the restorer's pidfd every stub inherited.
    func becomeZombie(pidfd: Int32) throws {
        let status = image.main.tc.exitCode
        let sig = Int32(status & 0x7f)
        if sig == 0 {
            _ = try? callRaw(on: nil, SyscallNumber.exitGroup, [UInt64((status >> 8) & 0xff)])
            return
        }
        guard Self.killsByDefault(sig) else {
            throw CheckpointError(.image, "core-\(pid).img: zombie killed by signal \(sig), which does not kill by default")
        }
        // The stub has the restorer's disposition (SIGPIPE may be ignored there).
        try call("rt_sigaction(\(sig), SIG_DFL)", SyscallNumber.rtSigaction, UInt64(sig), try put([UInt8](repeating: 0, count: 32)), 0, 8)
        var coreDir: String?
        defer { if let coreDir { try? FileManager.default.removeItem(atPath: coreDir) } }
        if status & 0x80 != 0 {
            coreDir = try dumpCoreIntoScratch(pidfd: pidfd)
        } else {
            // No core file for a signal that dumps core by default: none was dumped before.
            try call("prctl(PR_SET_DUMPABLE, 0)", SyscallNumber.prctl, 4, 0)
        }
        // The signal is sent from here and let through its delivery stop: the stub dies
        // of it (dumping core) with us as tracer.
        let ptrace = Ptrace(hostPid)
        try ptrace.setSigmask(0)
        if Glibc.kill(hostPid, sig) != 0 { throw CheckpointError.errno("kill zombie stub \(pid) with signal \(sig)") }
        try ptrace.cont()
        while let event = try TaskEvent.wait(hostPid) {
            guard case .stopped(let got, let ev) = event else { return }
            try ptrace.cont(signal: ev == 0 ? got : 0)
        }
    }

    /// The core flag of a wait status is only set by a core the kernel really wrote: the
    /// stub dumps one (a few pages: only the stub is mapped) into a scratch directory of the
    /// restorer that becomes its cwd, removed after. A core_pattern that pipes to a helper
    /// or names an absolute path would leave a core elsewhere: refused.
    private func dumpCoreIntoScratch(pidfd: Int32) throws -> String {
        let pattern = (try? readProcFile("/proc/sys/kernel/core_pattern"))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard !pattern.isEmpty, !pattern.hasPrefix("|"), !pattern.contains("/") else {
            throw CheckpointError(.unsupported, "pid \(pid): a zombie that dumped core cannot be remade: kernel.core_pattern '\(pattern)' would write its core outside the restore")
        }
        var template = Array("/tmp/ocicheckpoint-core-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw CheckpointError.errno("mkdtemp for the core of zombie \(pid)")
        }
        let dir = String(cString: template)
        do {
            let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd < 0 { throw CheckpointError.errno("open \(dir)") }
            defer { close(fd) }
            let theirs = try takeFd(fd, pidfd: pidfd)
            try call("fchdir to the core directory", SyscallNumber.fchdir, UInt64(theirs))
            try call("close", SyscallNumber.close, UInt64(theirs))
            let unlimited = try put(bytes(UInt64.max) + bytes(UInt64.max))
            try call("prlimit RLIMIT_CORE", SyscallNumber.prlimit64, 0, 4 /* RLIMIT_CORE */, unlimited, 0)
            try call("prctl(PR_SET_DUMPABLE, 1)", SyscallNumber.prctl, 4, 1)
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
        return dir
    }

    /// Signals whose default action ends the process (with or without a core).
    static func killsByDefault(_ sig: Int32) -> Bool {
        guard sig > 0 && sig <= 64 else { return false }
        return ![SIGCHLD, SIGCONT, SIGURG, SIGWINCH, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU].contains(sig)
    }
}
