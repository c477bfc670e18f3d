import Foundation
import LinuxKernel
import Images
import ProcFS

/// Asks a seized process what only the process itself can tell (sigactions, itimers,
/// sigaltstack, tid address...) by injecting syscalls, single or batched (SyscallBatch).
/// It borrows three bytes of the process's own code to map a scratch area, puts the bytes
/// back at once, and works from that area until `finish()` unmaps it.
final class ProcessProbe: TaskControl {
    let pid: Int32
    let memory: RemoteMemory
    private(set) var scratch: UInt64 = 0
    static let scratchSize: UInt64 = 16384
    /// Data area inside the scratch area, after the code and before the batch table.
    var data: UInt64 { scratch + 128 }
    private var table: UInt64 { scratch + 12288 }
    private static let batchLimit = 4096 / SyscallBatch.entrySize - 1
    /// A batch ends with SIGSTOP, whose sending drops a pending SIGCONT: such a process is
    /// asked one call at a time.
    private let batchable: Bool
    private var masks: [Int32: UInt64] = [:]
    /// Where the syscall instruction is borrowed from, and the bytes that belong there.
    private let text: UInt64
    private let original: [UInt8]

    init(pid: Int32, threads: [Int32], areas: [MemoryArea]) throws {
        self.pid = pid
        memory = try RemoteMemory(pid: pid)
        // Block every signal while we inject, so that none is delivered into our syscalls.
        var sigcont = false
        for tid in threads {
            let ptrace = Ptrace(tid)
            let status = try TaskStatus.read(pid: pid, tid: tid)
            sigcont = sigcont || (status.sigPnd | status.shdPnd) & (1 << UInt64(SIGCONT - 1)) != 0
            // A filter (or strict mode) would kill or fail the syscalls we inject.
            if status.seccomp != 0 { try ptrace.setOptions(Ptrace.optSuspendSeccomp) }
            masks[tid] = try ptrace.sigmask()
            try ptrace.setSigmask(~UInt64(0))
        }
        batchable = !sigcont
        guard let textArea = areas.first(where: { $0.executable && !$0.shared && !$0.isSpecial }) ?? areas.first(where: { $0.executable && $0.path == "[vdso]" }) else {
            throw CheckpointError(.unsupported, "pid \(pid) has no executable mapping to inject syscalls through")
        }
        text = textArea.start
        original = try memory.read(textArea.start, count: SyscallInjector.code.count)
        let result = try borrowingText(threads[0]) {
            try $0.callRaw(SyscallNumber.mmap, [0, ProcessProbe.scratchSize, UInt64(PROT_READ | PROT_WRITE | PROT_EXEC),
                                                UInt64(MAP_PRIVATE | MAP_ANONYMOUS), UInt64.max, 0])
        }
        if result < 0 && result > -4096 {
            throw CheckpointError.errno("mmap of a scratch page in pid \(pid)", Int32(-result))
        }
        scratch = UInt64(bitPattern: result)
        try memory.write(scratch, SyscallInjector.code)
        try memory.write(scratch + SyscallBatch.codeOffset, SyscallBatch.code)
    }

    /// Runs `body` with `syscall; int3` written over the process's own code, then puts
    /// the code back. Used only to map and unmap the scratch page.
    private func borrowingText<T>(_ tid: Int32, _ body: (SyscallInjector) throws -> T) throws -> T {
        try memory.write(text, SyscallInjector.code)
        defer { try? memory.write(text, original) }
        let injector = try SyscallInjector(tid: tid, codeAddress: text)
        defer { try? injector.restore() }
        return try body(injector)
    }

    /// The injector of the `inject(on:)` block running now: its calls share one save and
    /// restore of the thread's registers.
    private var current: SyscallInjector?

    /// Runs `body` with thread `tid` ready for injected syscalls; its registers are put
    /// back afterwards.
    func inject<T>(on tid: Int32, _ body: (ProcessProbe) throws -> T) throws -> T {
        let injector = try SyscallInjector(tid: tid, codeAddress: scratch)
        let outer = current
        current = injector
        defer { current = outer; try? injector.restore() }
        return try body(self)
    }

    func callRaw(on tid: Int32?, _ nr: Int, _ args: [UInt64]) throws -> Int64 {
        let tid = tid ?? pid
        if let injector = current, injector.tid == tid { return try injector.callRaw(nr, args) }
        return try inject(on: tid) { _ in try current!.callRaw(nr, args) }
    }

    /// Runs the batch in thread `tid` with one resume per `batchLimit` calls (and past a
    /// failed call). The thread is left in the signal-delivery stop of the batch's
    /// SIGSTOP, from which single calls start as from any stop, and where the injector's
    /// `restore()` only puts the registers back: leaving that stop (signal 0) goes through
    /// the same syscall-restart path as leaving the stop it was seized in.
    func ask(on tid: Int32?, _ calls: [(nr: Int, args: [UInt64])]) throws -> [Int64] {
        let tid = tid ?? pid
        guard batchable, calls.count > 1 else { return try calls.map { try callRaw(on: tid, $0.nr, $0.args) } }
        guard current?.tid == tid else { return try inject(on: tid) { try $0.ask(on: tid, calls) } }
        var results: [Int64] = []
        while results.count < calls.count {
            let chunk = Array(calls[results.count..<min(results.count + Self.batchLimit, calls.count)])
            try memory.write(table, SyscallBatch.table(chunk))
            let got = try SyscallBatch.run(tid: tid, memory: memory, codeBase: scratch, table: table, count: chunk.count)
            let ran = got.prefix { $0 != nil }.map { $0! }
            if ran.isEmpty { throw CheckpointError(.invalidState, "tid \(tid) of pid \(pid) ran none of a batch of \(chunk.count) syscalls") }
            results += ran
        }
        return results
    }

    func write(_ address: UInt64, _ bytes: [UInt8]) throws { try memory.write(address, bytes) }

    func read(_ address: UInt64, count: Int) throws -> [UInt8] { try memory.read(address, count: count) }

    /// Unmaps the scratch page and gives every thread its signal mask back.
    func finish(mainThread: Int32) throws {
        if scratch != 0 {
            try borrowingText(mainThread) { try $0.call("munmap scratch", SyscallNumber.munmap, scratch, ProcessProbe.scratchSize) }
            scratch = 0
        }
        for (tid, mask) in masks { try Ptrace(tid).setSigmask(mask) }
        masks.removeAll()
    }

    /// The signal mask a thread had before the probe blocked everything.
    func originalMask(_ tid: Int32) throws -> UInt64 {
        guard let m = masks[tid] else { throw CheckpointError(.invalidState, "tid \(tid) of pid \(pid) is not probed") }
        return m
    }

    /// Best effort after a failure: leave the process as it was.
    func abandon(mainThread: Int32) {
        try? finish(mainThread: mainThread)
        for (tid, mask) in masks { try? Ptrace(tid).setSigmask(mask) }
    }
}
