import Foundation

/// Makes a stopped thread execute single syscalls: its registers are saved, the
/// instruction pointer is moved to `syscall; int3` at `codeAddress`, the thread is stepped
/// to the syscall's exit, and the result is read from rax. `restore()` puts the saved
/// registers back.
public final class SyscallInjector {
    /// The bytes the injector needs at `codeAddress`.
    public static let code: [UInt8] = [0x0f, 0x05, 0xcc] // syscall; int3

    public let tid: Int32
    public let codeAddress: UInt64
    public let saved: Registers
    /// Children reported by PTRACE_EVENT_FORK/CLONE stops during the last call.
    public private(set) var newTasks: [Int32] = []
    /// Signals that stopped the thread during a call instead of the trap; they were held back.
    public private(set) var heldSignals: [Int32] = []

    public init(tid: Int32, codeAddress: UInt64) throws {
        self.tid = tid
        self.codeAddress = codeAddress
        saved = try Ptrace(tid).registers()
    }

    /// Runs syscall `nr`; returns the raw result (a negative errno on failure). The thread
    /// is stepped with PTRACE_SYSCALL to the syscall's exit stop: the int3 after it is
    /// never reached, because a trap forces SIGTRAP on the thread, and a forced signal that
    /// is blocked (as everything is while we inject) is unblocked and its handler reset to
    /// SIG_DFL by the kernel: the task's own SIGTRAP handler and a pending SIGTRAP would
    /// not survive the dump.
    public func callRaw(_ nr: Int, _ args: [UInt64]) throws -> Int64 {
        let ptrace = Ptrace(tid)
        var regs = saved
        regs.rax = UInt64(nr)
        // orig_rax = -1 keeps the kernel's syscall-restart logic away from our registers.
        regs.orig_rax = UInt64.max
        let a = args + [UInt64](repeating: 0, count: max(0, 6 - args.count))
        regs.rdi = a[0]; regs.rsi = a[1]; regs.rdx = a[2]; regs.r10 = a[3]; regs.r8 = a[4]; regs.r9 = a[5]
        regs.rip = codeAddress
        try ptrace.setRegisters(regs)
        newTasks = []
        var entered = false
        try ptrace.syscallStep()
        while true {
            guard let event = try TaskEvent.wait(tid) else { continue }
            switch event {
            case .exited(let code):
                throw CheckpointError(.invalidState, "tid \(tid) exited (status \(code)) during injected syscall \(nr)")
            case .killed(let sig):
                throw CheckpointError(.invalidState, "tid \(tid) was killed by signal \(sig) during injected syscall \(nr)")
            case .stopped(let sig, let ev) where ev == Ptrace.eventFork || ev == Ptrace.eventClone || ev == Ptrace.eventVfork:
                _ = sig
                newTasks.append(Int32(truncatingIfNeeded: try ptrace.eventMessage()))
                try ptrace.syscallStep()
            case .stopped(let sig, let ev) where ev != 0:
                _ = sig
                try ptrace.syscallStep()
            case .stopped(let sig, _) where sig & 0x7f == SIGTRAP:
                let out = try ptrace.registers()
                if out.rip != codeAddress + 2 {
                    throw CheckpointError(.invalidState, "tid \(tid) trapped at \(out.rip.hex), not in the injected syscall")
                }
                if entered { return Int64(bitPattern: out.rax) }
                entered = true
                try ptrace.syscallStep()
            case .stopped(let sig, _):
                if sig == SIGSEGV || sig == SIGBUS || sig == SIGILL {
                    let at = (try? ptrace.registers().rip) ?? 0
                    throw CheckpointError(.invalidState, "tid \(tid) got signal \(sig) at \(at.hex) during injected syscall \(nr)")
                }
                heldSignals.append(sig)
                try ptrace.syscallStep()
            }
        }
    }

    /// Runs syscall `nr` and throws on a negative result, naming `what`.
    @discardableResult
    public func call(_ what: @autoclosure () -> String, _ nr: Int, _ args: UInt64...) throws -> UInt64 {
        try call(what(), nr, args: args)
    }

    @discardableResult
    public func call(_ what: @autoclosure () -> String, _ nr: Int, args: [UInt64]) throws -> UInt64 {
        let r = try callRaw(nr, args)
        if r < 0 && r > -4096 { throw CheckpointError.errno("\(what()) in tid \(tid)", Int32(-r)) }
        return UInt64(bitPattern: r)
    }

    /// Puts the saved registers back. A thread left in a syscall-exit stop would return
    /// to user space without the kernel's restart of the syscall it was stopped in (the
    /// registers say -ERESTARTSYS...): it is first made to trap again inside the signal
    /// path (PTRACE_INTERRUPT), where it was seized, so that leaving that stop restarts
    /// its syscall as it would have.
    public func restore() throws {
        let ptrace = Ptrace(tid)
        let now = try ptrace.registers()
        if now.rip == codeAddress + 2 {
            try ptrace.interrupt()
            try ptrace.syscallStep()
            while true {
                guard let event = try TaskEvent.wait(tid) else { continue }
                if case .stopped(_, Ptrace.eventStop) = event { break }
                if case .stopped = event { try ptrace.syscallStep(); continue }
                throw CheckpointError(.invalidState, "tid \(tid) ended while its registers were put back (\(event))")
            }
        }
        try ptrace.setRegisters(saved)
    }
}
