import Foundation
import CShim

public typealias Registers = user_regs_struct

extension Registers {
    /// These registers of a thread stopped inside a syscall the kernel would restart
    /// (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK), rewound to the
    /// syscall instruction with its number in ax, so the syscall runs again on resume, as
    /// CRIU saves them. Registers not in such a syscall come back unchanged.
    public var rewoundToRestartSyscall: Registers {
        var regs = self
        if Int64(bitPattern: regs.orig_rax) >= 0 && [-512, -513, -514, -516].contains(Int64(bitPattern: regs.rax)) {
            regs.rax = regs.orig_rax
            regs.rip -= 2
        }
        return regs
    }
}

/// ptrace(2) on one thread, by tid. All calls must come from the tracer thread.
public struct Ptrace {
    public let tid: Int32

    public init(_ tid: Int32) { self.tid = tid }

    public static let getRegs = 12, setRegs = 13, cont = 7, detach = 17, syscall = 24
    public static let seize = 0x4206, interrupt = 0x4207, listen = 0x4208
    public static let getSigmask = 0x420a, setSigmask = 0x420b, peekSiginfo = 0x4209
    public static let setOptions = 0x4200, getEventMsg = 0x4201, secompGetFilter = 0x420c
    public static let optTraceSysGood = 0x01, optTraceFork = 0x02, optTraceVfork = 0x04
    public static let optTraceClone = 0x08, optExitKill = 0x100000
    /// Seccomp does not apply to the tracee while it is traced with this (CAP_SYS_ADMIN).
    public static let optSuspendSeccomp = 0x200000
    public static let eventFork = 1, eventVfork = 2, eventClone = 3, eventStop = 128
    public static let ntPrstatus: Int32 = 1, ntX86Xstate: Int32 = 0x202

    private func call(_ what: @autoclosure () -> String, _ request: Int,
                      _ addr: UnsafeMutableRawPointer? = nil, _ data: UnsafeMutableRawPointer? = nil) throws {
        errno = 0
        if oc_ptrace(request, tid, addr, data) == -1 {
            throw CheckpointError.errno("ptrace \(what()) on tid \(tid)")
        }
    }

    public func seize(options: Int = 0) throws {
        try call("seize", Ptrace.seize, nil, UnsafeMutableRawPointer(bitPattern: options))
    }
    public func interrupt() throws { try call("interrupt", Ptrace.interrupt) }
    public func setOptions(_ options: Int) throws {
        try call("setoptions", Ptrace.setOptions, nil, UnsafeMutableRawPointer(bitPattern: options))
    }

    public func cont(signal: Int32 = 0) throws {
        try call("cont", Ptrace.cont, nil, UnsafeMutableRawPointer(bitPattern: Int(signal)))
    }
    public func syscallStep() throws {
        try call("syscall", Ptrace.syscall, nil, nil)
    }
    public func detach(signal: Int32 = 0) throws {
        try call("detach", Ptrace.detach, nil, UnsafeMutableRawPointer(bitPattern: Int(signal)))
    }

    public func eventMessage() throws -> UInt {
        var msg: UInt = 0
        try call("geteventmsg", Ptrace.getEventMsg, nil, &msg)
        return msg
    }

    public func registers() throws -> Registers {
        var regs = Registers()
        try call("getregs", Ptrace.getRegs, nil, &regs)
        return regs
    }
    public func setRegisters(_ regs: Registers) throws {
        var r = regs
        try call("setregs", Ptrace.setRegs, nil, &r)
    }

    /// The raw XSAVE area in the standard (non-compacted) layout the ptrace regset uses.
    public func xstate() throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 16384)
        var len = buf.count
        let r = buf.withUnsafeMutableBytes { oc_getregset(tid, Ptrace.ntX86Xstate, $0.baseAddress, &len) }
        if r != 0 { throw CheckpointError.errno("ptrace getregset xstate on tid \(tid)") }
        return Array(buf[0..<len])
    }
    public func setXstate(_ area: [UInt8]) throws {
        var buf = area
        let r = buf.withUnsafeMutableBytes { oc_setregset(tid, Ptrace.ntX86Xstate, $0.baseAddress, $0.count) }
        if r != 0 { throw CheckpointError.errno("ptrace setregset xstate on tid \(tid)") }
    }

    public func sigmask() throws -> UInt64 {
        var mask: UInt64 = 0
        try call("getsigmask", Ptrace.getSigmask, UnsafeMutableRawPointer(bitPattern: 8), &mask)
        return mask
    }
    public func setSigmask(_ mask: UInt64) throws {
        var m = mask
        try call("setsigmask", Ptrace.setSigmask, UnsafeMutableRawPointer(bitPattern: 8), &m)
    }

    /// Pending siginfos (128 bytes each) of the thread queue, or of the process-wide queue.
    public func pendingSignals(shared: Bool) throws -> [[UInt8]] {
        struct Args { var off: UInt64; var flags: UInt32; var nr: Int32 }
        var out: [[UInt8]] = []
        var buf = [UInt8](repeating: 0, count: 128 * 32)
        while true {
            var args = Args(off: UInt64(out.count), flags: shared ? 1 : 0, nr: 32)
            let n = buf.withUnsafeMutableBytes { oc_ptrace(Ptrace.peekSiginfo, tid, &args, $0.baseAddress) }
            if n < 0 { throw CheckpointError.errno("ptrace peeksiginfo on tid \(tid)") }
            if n == 0 { return out }
            for i in 0..<Int(n) { out.append(Array(buf[(i * 128)..<((i + 1) * 128)])) }
        }
    }

    public func rseqConfiguration() throws -> oc_rseq_config {
        var conf = oc_rseq_config()
        if oc_get_rseq_config(tid, &conf) != 0 {
            throw CheckpointError.errno("ptrace get_rseq_configuration on tid \(tid)")
        }
        return conf
    }

    /// The flags filter `index` was installed with (SECCOMP_FILTER_FLAG_*).
    public func seccompFlags(_ index: Int) throws -> UInt64 {
        var meta: (UInt64, UInt64) = (UInt64(index), 0)
        if oc_ptrace(0x420d /* PTRACE_SECCOMP_GET_METADATA */, tid, UnsafeMutableRawPointer(bitPattern: 16), &meta) < 0 {
            throw CheckpointError.errno("ptrace seccomp_get_metadata on tid \(tid)")
        }
        return meta.1
    }

    /// Seccomp filter `index` as raw sock_filter instructions (8 bytes each), nil past the last.
    public func seccompFilter(_ index: Int) throws -> [UInt8]? {
        let n = oc_ptrace(Ptrace.secompGetFilter, tid, UnsafeMutableRawPointer(bitPattern: index), nil)
        if n < 0 { if errno == ENOENT { return nil }; throw CheckpointError.errno("ptrace seccomp_get_filter on tid \(tid)") }
        var buf = [UInt8](repeating: 0, count: Int(n) * 8)
        let m = buf.withUnsafeMutableBytes { oc_ptrace(Ptrace.secompGetFilter, tid, UnsafeMutableRawPointer(bitPattern: index), $0.baseAddress) }
        if m < 0 { throw CheckpointError.errno("ptrace seccomp_get_filter on tid \(tid)") }
        return buf
    }
}

/// What waitpid reported for one thread.
public enum TaskEvent: Equatable {
    case exited(Int32)
    case killed(Int32)
    /// A ptrace stop: the stop signal and the PTRACE_EVENT_* code (0 for a signal-delivery stop).
    case stopped(signal: Int32, event: Int)

    public static func wait(_ tid: Int32, nohang: Bool = false) throws -> TaskEvent? {
        var status: Int32 = 0
        let flags = Int32(__WALL) | (nohang ? WNOHANG : 0)
        if try Syscall.retrying("waitpid on tid \(tid)", { waitpid(tid, &status, flags) }) == 0 { return nil }
        if oc_wifexited(status) != 0 { return .exited(oc_wexitstatus(status)) }
        if oc_wifsignaled(status) != 0 { return .killed(oc_wtermsig(status)) }
        return .stopped(signal: oc_wstopsig(status), event: Int(oc_wevent(status)))
    }
}
