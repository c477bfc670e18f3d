import Foundation
import LinuxKernel

/// A stopped task that runs the syscalls we choose, one at a time, with a scratch area of
/// its own memory for their arguments and results. The dump asks a seized task through it
/// (ProcessProbe), the restore rebuilds a stub through it (RestoredProcess), and unit tests
/// put a recording double in its place: the code that decides what to inject is written
/// against this protocol only.
protocol TaskControl: AnyObject {
    /// The task as its messages name it (the pid in the tree's own namespace).
    var pid: Int32 { get }
    /// Scratch memory in the task for syscall arguments and results.
    var data: UInt64 { get }
    /// Runs syscall `nr` in thread `tid` (a host tid; the main thread when nil). The raw
    /// result: a negative errno on failure.
    func callRaw(on tid: Int32?, _ nr: Int, _ args: [UInt64]) throws -> Int64
    func write(_ address: UInt64, _ bytes: [UInt8]) throws
    func read(_ address: UInt64, count: Int) throws -> [UInt8]
    /// Runs independent syscalls in thread `tid` (the main thread when nil), each writing
    /// its answer where its own arguments say; their raw results in order. A task may run
    /// them all with one resume.
    func ask(on tid: Int32?, _ calls: [(nr: Int, args: [UInt64])]) throws -> [Int64]
    /// Runs `calls` in order in thread `tid` (the main thread when nil), stopping at the
    /// first failure (thrown). Their results are not needed: a task may run them all with
    /// one resume.
    func callAll(on tid: Int32?, _ calls: [InjectedCall]) throws
}

/// A syscall for `callAll`. `data`, when given, is placed in the task and its address
/// becomes argument `dataArgument`.
struct InjectedCall {
    var what: String
    var nr: Int
    var args: [UInt64]
    var data: [UInt8] = []
    var dataArgument = 0
}

extension TaskControl {
    /// Runs syscall `nr` and throws on a negative result, naming `what` and the task.
    @discardableResult
    func call(_ what: @autoclosure () -> String, on tid: Int32? = nil, _ nr: Int, _ args: UInt64...) throws -> UInt64 {
        let r = try callRaw(on: tid, nr, args)
        if r < 0 && r > -4096 {
            throw CheckpointError.errno("\(what()) in pid \(pid)\(tid.map { " (tid \($0))" } ?? "")", Int32(-r))
        }
        return UInt64(bitPattern: r)
    }

    func callAll(_ calls: [InjectedCall]) throws { try callAll(on: nil, calls) }

    func callAll(on tid: Int32?, _ calls: [InjectedCall]) throws { try callAllOneByOne(on: tid, calls) }

    func ask(on tid: Int32?, _ calls: [(nr: Int, args: [UInt64])]) throws -> [Int64] {
        try calls.map { try callRaw(on: tid, $0.nr, $0.args) }
    }

    /// `ask`, throwing on the first failed call, named by `what` of its index.
    @discardableResult
    func askAll(on tid: Int32? = nil, _ what: (Int) -> String, _ calls: [(nr: Int, args: [UInt64])]) throws -> [UInt64] {
        let results = try ask(on: tid, calls)
        return try results.enumerated().map { i, r in
            if r < 0 && r > -4096 { throw CheckpointError.errno("\(what(i)) in pid \(pid)\(tid.map { " (tid \($0))" } ?? "")", Int32(-r)) }
            return UInt64(bitPattern: r)
        }
    }

    /// One injected syscall per call, each data in the scratch area in turn.
    func callAllOneByOne(on tid: Int32? = nil, _ calls: [InjectedCall]) throws {
        for c in calls {
            var args = c.args
            if !c.data.isEmpty { args[c.dataArgument] = try put(c.data, at: 0) }
            let r = try callRaw(on: tid, c.nr, args)
            if r < 0 && r > -4096 { throw CheckpointError.errno("\(c.what) in pid \(pid)\(tid.map { " (tid \($0))" } ?? "")", Int32(-r)) }
        }
    }

    /// Writes `bytes` at `offset` in the scratch area; returns their address in the task.
    func put(_ bytes: [UInt8], at offset: UInt64 = 0) throws -> UInt64 {
        try write(data + offset, bytes)
        return data + offset
    }

    func put<T>(value: T, at offset: UInt64 = 0) throws -> UInt64 {
        try put(bytes(value), at: offset)
    }

    func readValue<T>(_ address: UInt64, as: T.Type) throws -> T {
        try read(address, count: MemoryLayout<T>.size).withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }

    /// `count` 64-bit words at `address` (a struct sigaction, a pair of timevals...).
    func readWords(_ address: UInt64, count: Int) throws -> [UInt64] {
        try read(address, count: count * 8).withUnsafeBytes { p in (0..<count).map { p.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) } }
    }
}

func bytes<T>(_ v: T) -> [UInt8] {
    var x = v
    return withUnsafeBytes(of: &x) { Array($0) }
}
