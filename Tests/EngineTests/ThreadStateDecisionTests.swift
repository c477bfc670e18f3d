import Foundation
import Testing
import LinuxKernel
import Images
@testable import Engine

/// What a restore injects per thread, read off a recording task.
@Suite("thread state restore, through a recording task")
struct ThreadStateDecisionTests {
    static func core(pdeath: UInt32 = 0, comm: String? = nil, altstackFlags: UInt32 = 0,
                     privateSignals: [Int32] = [], sharedSignals: [Int32] = []) -> CoreEntry {
        var core = CoreEntry()
        var info = ThreadInfoX86()
        info.clearTidAddr_p = 0x7f00_0000_0990
        core.threadInfo = info
        var t = ThreadCoreEntry()
        t.futexRla = 0; t.futexRlaLen = 0
        t.pdeathSig = pdeath
        var sas = ThreadSasEntry()
        sas.ssSp = 0x6000; sas.ssFlags = altstackFlags; sas.ssSize = 0x2000
        t.sas = sas
        if let comm { t.comm = comm }
        var p = SignalQueueEntry()
        p.signals = privateSignals.map(siginfo)
        t.signalsP = p
        core.threadCore = t
        var tc = TaskCoreEntry()
        var s = SignalQueueEntry()
        s.signals = sharedSignals.map(siginfo)
        tc.signalsS = s
        core.tc = tc
        return core
    }

    static func siginfo(_ signo: Int32) -> SiginfoEntry {
        var e = SiginfoEntry()
        e.siginfo = Data(withUnsafeBytes(of: signo) { Array($0) } + [UInt8](repeating: 0, count: 124))
        return e
    }

    @Test("the root keeps no parent-death signal; a child of a restored task does")
    func pdeathOnlyUnderRestoredParent() throws {
        let root = RecordingTask()
        try root.setThreadState(Self.core(pdeath: UInt32(SIGTERM)), vtid: 42, on: 500, parentRestored: false)
        #expect(!root.calls.contains { $0.nr == SyscallNumber.prctl && $0.args[0] == 1 })
        let child = RecordingTask()
        try child.setThreadState(Self.core(pdeath: UInt32(SIGTERM)), vtid: 42, on: 500, parentRestored: true)
        #expect(child.calls.contains { $0 == .init(tid: 500, nr: SyscallNumber.prctl, args: [1, UInt64(SIGTERM), 0, 0, 0, 0]) })
    }

    @Test("clear-tid address and altstack on the thread itself; SS_ONSTACK is not passed back")
    func tidAddressAndAltstack() throws {
        let task = RecordingTask()
        var stack: [UInt8] = []
        task.kernel = { call, t in if call.nr == SyscallNumber.sigaltstack { stack = (try? t.read(call.args[0], count: 24)) ?? [] } }
        try task.setThreadState(Self.core(altstackFlags: 1 /* SS_ONSTACK */), vtid: 43, on: 501, parentRestored: true)
        #expect(Array(task.calls.prefix(2)) == [
            .init(tid: 501, nr: SyscallNumber.setTidAddress, args: [0x7f00_0000_0990, 0, 0, 0, 0, 0]),
            .init(tid: 501, nr: SyscallNumber.sigaltstack, args: [task.data, 0, 0, 0, 0, 0]),
        ])
        let (sp, flags, size) = stack.withUnsafeBytes { ($0.loadUnaligned(as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self),
                                                         $0.loadUnaligned(fromByteOffset: 16, as: UInt64.self)) }
        #expect(sp == 0x6000 && flags == 0 && size == 0x2000)
    }

    @Test("a thread's name is cut to 15 bytes and NUL-terminated")
    func name() throws {
        let task = RecordingTask()
        var name: [UInt8] = []
        task.kernel = { call, t in if call.nr == SyscallNumber.prctl && call.args[0] == 15 { name = (try? t.read(call.args[1], count: 16)) ?? [] } }
        try task.setThreadState(Self.core(comm: "a-very-long-thread-name"), vtid: 42, on: 500, parentRestored: true)
        #expect(name == Array("a-very-long-thr".utf8) + [0])
    }

    @Test("pending signals are queued from the main thread: a thread's own to it, the shared ones once")
    func pendingSignals() throws {
        let worker = RecordingTask()
        try worker.setThreadState(Self.core(privateSignals: [SIGUSR1], sharedSignals: [SIGUSR2]), vtid: 44, on: 502, parentRestored: true)
        let queued = worker.calls.filter { $0.nr == SyscallNumber.rtTgsigqueueinfo || $0.nr == SyscallNumber.rtSigqueueinfo }
        #expect(queued == [.init(tid: nil, nr: SyscallNumber.rtTgsigqueueinfo, args: [42, 44, UInt64(SIGUSR1), worker.data, 0, 0])])
        let main = RecordingTask()
        try main.setThreadState(Self.core(sharedSignals: [SIGUSR2]), vtid: 42, on: 500, parentRestored: true)
        #expect(main.calls.filter { $0.nr == SyscallNumber.rtSigqueueinfo } ==
                [.init(tid: nil, nr: SyscallNumber.rtSigqueueinfo, args: [42, UInt64(SIGUSR2), main.data, 0, 0, 0])])
    }
}
