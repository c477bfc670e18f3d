import Foundation

/// Runs a list of syscalls in a stopped thread with one resume. A single injected syscall
/// costs the tracer two stops (entry, exit) and as many context switches; a batch of any
/// length costs one: a loop in the task's code page (`code`, at `codeOffset`) walks a
/// table of entries (nr, six arguments, result), stops at the first failure, and ends by
/// sending its thread SIGSTOP, which the tracer sees as a signal-delivery stop and
/// discards. SIGSTOP cannot be blocked or handled, and unlike a trap it leaves the task's
/// own SIGTRAP handler alone; its one side effect, dropping a pending SIGCONT, rules out
/// batches once pending signals are queued.
public enum SyscallBatch {
    public static let codeOffset: UInt64 = 16
    /// loop: rax = [rbx]; if rax == -1 stop; load rdi, rsi, rdx, r10, r8, r9 from the
    /// entry; syscall; [rbx+56] = rax; if rax is an errno stop; rbx += 64; jmp loop.
    /// stop: tkill(gettid(), SIGSTOP).
    public static let code: [UInt8] = [
        0x48, 0x8b, 0x03, 0x48, 0x83, 0xf8, 0xff, 0x74, 0x2c, 0x48, 0x8b, 0x7b,
        0x08, 0x48, 0x8b, 0x73, 0x10, 0x48, 0x8b, 0x53, 0x18, 0x4c, 0x8b, 0x53,
        0x20, 0x4c, 0x8b, 0x43, 0x28, 0x4c, 0x8b, 0x4b, 0x30, 0x0f, 0x05, 0x48,
        0x89, 0x43, 0x38, 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, 0x73, 0x06, 0x48,
        0x83, 0xc3, 0x40, 0xeb, 0xcb, 0xb8, 0xba, 0x00, 0x00, 0x00, 0x0f, 0x05,
        0x48, 0x89, 0xc7, 0xbe, 0x13, 0x00, 0x00, 0x00, 0xb8, 0xc8, 0x00, 0x00,
        0x00, 0x0f, 0x05, 0xeb, 0xe8,
    ]
    public static let entrySize = 64
    /// A result slot the loop never reached.
    static let notRun = UInt64(0x6e6f_7420_7275_6e21)

    /// The table for `calls`, to be written at its address in the task.
    public static func table(_ calls: [(nr: Int, args: [UInt64])]) -> [UInt8] {
        var words: [UInt64] = []
        words.reserveCapacity((calls.count + 1) * 8)
        for call in calls {
            let args = call.args + [UInt64](repeating: 0, count: max(0, 6 - call.args.count))
            words += [UInt64(call.nr)] + args.prefix(6) + [notRun]
        }
        words += [UInt64.max] + [UInt64](repeating: 0, count: 7)
        return words.withUnsafeBytes { Array($0) }
    }

    /// Runs the table written at `table` (for `count` calls) in thread `tid`, whose code
    /// page (with `code` at `codeOffset`) starts at `codeBase`. Returns each call's raw
    /// result (a negative errno on failure), nil for those after a failure. The thread is
    /// left in a signal-delivery stop. `newTask` gets each task the batch forks or clones,
    /// in order, as the restorer sees it (the task is left in its first stop).
    public static func run(tid: Int32, memory: RemoteMemory, codeBase: UInt64, table: UInt64, count: Int,
                           newTask: (Int32) throws -> Void = { _ in }) throws -> [Int64?] {
        let ptrace = Ptrace(tid)
        var regs = try ptrace.registers()
        regs.rip = codeBase + codeOffset
        regs.rbx = table
        // orig_rax = -1 keeps the kernel's syscall-restart logic away from our registers.
        regs.orig_rax = UInt64.max
        try ptrace.setRegisters(regs)
        try ptrace.cont()
        while true {
            guard let event = try TaskEvent.wait(tid) else { continue }
            switch event {
            case .exited(let code):
                throw CheckpointError(.invalidState, "tid \(tid) exited (status \(code)) during a batch of \(count) syscalls")
            case .killed(let sig):
                throw CheckpointError(.invalidState, "tid \(tid) was killed by signal \(sig) during a batch of \(count) syscalls")
            case .stopped(let sig, 0) where sig == SIGSTOP:
                let bytes = try memory.read(table, count: count * entrySize)
                return bytes.withUnsafeBytes { p in
                    (0..<count).map { i -> Int64? in
                        let r = p.loadUnaligned(fromByteOffset: i * entrySize + 56, as: UInt64.self)
                        return r == notRun ? nil : Int64(bitPattern: r)
                    }
                }
            case .stopped(let sig, 0) where sig == SIGSEGV || sig == SIGBUS || sig == SIGILL:
                let at = (try? ptrace.registers().rip) ?? 0
                throw CheckpointError(.invalidState, "tid \(tid) got signal \(sig) at \(at.hex) during a batch of \(count) syscalls")
            case .stopped(_, let ev) where ev == Ptrace.eventFork || ev == Ptrace.eventClone || ev == Ptrace.eventVfork:
                try newTask(Int32(truncatingIfNeeded: try ptrace.eventMessage()))
                try ptrace.cont()
            case .stopped:
                // Another signal or a ptrace event: held back, as single injected calls do.
                try ptrace.cont()
            }
        }
    }
}
