import Foundation
import Testing
import LinuxKernel
import Images
@testable import Engine

/// The stub's cleanup and the seccomp chain, read off a recording task.
@Suite("stub inheritance and seccomp, through a recording task")
struct StubAndSeccompDecisionTests {
    @Test("every fd but the restorer's pidfd is closed, every mapping but the kept ones unmapped")
    func dropInheritance() throws {
        let task = RecordingTask()
        let top = RestoredProcess.taskSize
        try task.dropInheritance(keepingFd: 3, keepingAreas: [(0x7fff_f000_0000, 0x7fff_f000_2000), (0x1000_0000, 0x1001_0000)])
        #expect(task.calls == [
            .init(tid: nil, nr: SyscallNumber.closeRange, args: [0, 2, 0, 0, 0, 0]),
            .init(tid: nil, nr: SyscallNumber.closeRange, args: [4, UInt64(UInt32.max), 0, 0, 0, 0]),
            .init(tid: nil, nr: SyscallNumber.munmap, args: [0, 0x1000_0000, 0, 0, 0, 0]),
            .init(tid: nil, nr: SyscallNumber.munmap, args: [0x1001_0000, 0x7fff_f000_0000 - 0x1001_0000, 0, 0, 0, 0]),
            .init(tid: nil, nr: SyscallNumber.munmap, args: [0x7fff_f000_2000, top - 0x7fff_f000_2000, 0, 0, 0, 0]),
        ])
        // A pidfd at 0 leaves nothing below it to close; an area from 0 leaves no gap there.
        let low = RecordingTask()
        try low.dropInheritance(keepingFd: 0, keepingAreas: [(0, 0x1000)])
        #expect(low.calls.map(\.nr) == [SyscallNumber.closeRange, SyscallNumber.munmap])
        #expect(low.calls[1].args[0] == 0x1000)
    }

    static func filter(_ bytes: Int, prev: UInt32?, flags: UInt32 = 0) -> SeccompFilter {
        var f = SeccompFilter()
        f.filter = Data(repeating: UInt8(bytes / 8), count: bytes)
        if let prev { f.prev = prev }
        f.flags = flags
        return f
    }

    @Test("a thread's seccomp chain is installed oldest first, on that thread, without TSYNC")
    func seccompChain() throws {
        let task = RecordingTask()
        var lengths: [UInt16] = []
        task.kernel = { call, t in lengths.append((try? t.readValue(call.args[2], as: UInt16.self)) ?? 0) }
        // The thread names its oldest filter, 2; as in CRIU's images its prev is the next
        // newer one, 0, the last. Filter 1 belongs to another thread.
        let filters = [Self.filter(32, prev: nil), Self.filter(24, prev: nil), Self.filter(16, prev: 0, flags: 1 /* TSYNC */ | 2)]
        try task.installSeccomp(filters, first: 2, vtid: 43, on: 501)
        #expect(task.calls.map(\.tid) == [501, 501])
        #expect(task.calls.map { $0.args[0] } == [1, 1])       // SECCOMP_SET_MODE_FILTER
        #expect(task.calls.map { $0.args[1] } == [2, 0])       // TSYNC dropped, other flags kept
        #expect(lengths == [2, 4])                             // instructions: oldest first
    }

    @Test("a chain naming a filter that is not in the image is refused before anything is installed")
    func seccompMissingFilter() throws {
        let task = RecordingTask()
        #expect {
            try task.installSeccomp([Self.filter(8, prev: 5)], first: 0, vtid: 43, on: 501)
        } throws: { ($0 as? CheckpointError)?.code == .image }
        #expect(task.calls.isEmpty)
    }
}
