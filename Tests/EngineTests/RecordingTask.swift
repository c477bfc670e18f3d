import Foundation
import LinuxKernel
import Images
@testable import Engine

/// A task that only records: every injected syscall (thread, number, arguments) in order,
/// every write into its memory. Reads return what was written (or what `kernel` wrote for
/// a call), so decision code runs exactly as against a stopped process.
final class RecordingTask: TaskControl {
    struct Call: Equatable, CustomStringConvertible {
        var tid: Int32?
        var nr: Int
        var args: [UInt64]
        var description: String { "\(nr)(\(args.map { String($0, radix: 16) }.joined(separator: ", ")))\(tid.map { " on \($0)" } ?? "")" }
    }

    let pid: Int32 = 42
    let data: UInt64 = 0x7000_0000
    private(set) var calls: [Call] = []
    /// Marks set by the test between calls ("fill"), at the index of the next call.
    private(set) var marks: [String: Int] = [:]
    private var memory: [UInt64: UInt8] = [:]
    /// The raw result of a call; by default mmap returns its address and anything else 0.
    var result: (Call) -> Int64 = { $0.nr == SyscallNumber.mmap ? Int64(bitPattern: $0.args[0]) : 0 }
    /// What the kernel writes into the task's memory for a call (a struct it fills in).
    var kernel: (Call, RecordingTask) -> Void = { _, _ in }

    func callRaw(on tid: Int32?, _ nr: Int, _ args: [UInt64]) throws -> Int64 {
        let call = Call(tid: tid, nr: nr, args: args + [UInt64](repeating: 0, count: max(0, 6 - args.count)))
        calls.append(call)
        kernel(call, self)
        return result(call)
    }

    func write(_ address: UInt64, _ bytes: [UInt8]) throws {
        for (i, b) in bytes.enumerated() { memory[address + UInt64(i)] = b }
    }

    func read(_ address: UInt64, count: Int) throws -> [UInt8] {
        (0..<count).map { memory[address + UInt64($0)] ?? 0 }
    }

    func mark(_ name: String) { marks[name] = calls.count }

    func words(_ address: UInt64, _ count: Int) -> [UInt64] { (try? readWords(address, count: count)) ?? [] }

    /// The syscall numbers, in order.
    var numbers: [Int] { calls.map(\.nr) }
}
