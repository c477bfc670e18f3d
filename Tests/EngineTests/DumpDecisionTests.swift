import Foundation
import Testing
import LinuxKernel
import Images
@testable import Engine

/// What a dump asks a seized task, read off a recording task that answers as the kernel
/// would: which syscalls, on which thread, and how the answers land in the images.
@Suite("dump questions, through a recording task")
struct DumpDecisionTests {
    @Test("sigactions are asked only for caught or ignored signals; the others are recorded as default")
    func sigactions() throws {
        let task = RecordingTask()
        task.kernel = { call, t in
            guard call.nr == SyscallNumber.rtSigaction else { return }
            // The old action of signal N: handler 0x1000*N, flags N, restorer 0x9000, mask 1<<N.
            let n = call.args[0]
            try? t.write(call.args[2], [0x1000 * n, n, 0x9000, 1 << n].flatMap { v in withUnsafeBytes(of: v) { Array($0) } })
        }
        let handled: UInt64 = 1 << UInt64(SIGINT - 1) | 1 << UInt64(SIGCHLD - 1)
        let got = try TaskDump.taskWide(of: task, handled: handled).sigactions
        #expect(got.count == 62)
        let asked = task.calls.filter { $0.nr == SyscallNumber.rtSigaction }
        #expect(asked.map { $0.args[0] } == [UInt64(SIGINT), UInt64(SIGCHLD)])
        #expect(asked.allSatisfy { $0.args[1] == 0 && $0.args[3] == 8 })
        #expect(Set(asked.map { $0.args[2] }).count == 2, "each answer has its own place: \(asked)")
        let sigint = got[Int(SIGINT) - 1]
        #expect([sigint.sigaction, sigint.flags, sigint.restorer, sigint.mask] == [0x2000, 2, 0x9000, 4])
        let sigterm = got[Int(SIGTERM) - 2]   // SIGKILL (9) is not in the list
        #expect([sigterm.sigaction, sigterm.flags, sigterm.restorer, sigterm.mask] == [0, 0, 0, 0])
        #expect(got[Int(SIGCHLD) - 2].sigaction == 0x1000 * UInt64(SIGCHLD))
    }

    @Test("the three itimers are asked in order and read back as value and interval")
    func itimers() throws {
        let task = RecordingTask()
        task.kernel = { call, t in
            guard call.nr == SyscallNumber.getitimer else { return }
            let which = call.args[0]
            try? t.write(call.args[1], [which + 1, 10, which + 5, 20].flatMap { v in withUnsafeBytes(of: v) { Array($0) } })
        }
        let timers = try TaskDump.taskWide(of: task, handled: 0).timers
        let asked = task.calls.filter { $0.nr == SyscallNumber.getitimer }
        #expect(asked.map { $0.args[0] } == [0, 1, 2])
        #expect([timers.real.isec, timers.real.iusec, timers.real.vsec, timers.real.vusec] == [1, 10, 5, 20])
        #expect(timers.prof.isec == 3 && timers.prof.vsec == 7)
    }

    @Test("per-thread state is asked of that thread: tid address, altstack, pdeath signal")
    func threadState() throws {
        let task = RecordingTask()
        task.kernel = { call, t in
            switch (call.nr, call.args[0]) {
            case (SyscallNumber.prctl, 40): try? t.write(call.args[1], bytes(UInt64(0x7f00_1234)))
            case (SyscallNumber.sigaltstack, _):
                try? t.write(call.args[1], bytes(UInt64(0x5000)) + bytes(UInt64(2)) + bytes(UInt64(0x4000)))
            case (SyscallNumber.prctl, 2): try? t.write(call.args[1], bytes(UInt32(SIGTERM)))
            default: break
            }
        }
        let got = try TaskDump.threadState(of: task, tid: 313)
        #expect(task.calls.allSatisfy { $0.tid == 313 })
        #expect(task.numbers == [SyscallNumber.prctl, SyscallNumber.sigaltstack, SyscallNumber.prctl, SyscallNumber.prctl])
        #expect(task.calls[1].args[0] == 0 && task.calls[1].args[1] != 0)   // asks, never sets
        #expect(task.calls[3].args[0] == 27)   // PR_GET_SECUREBITS
        #expect(got.clearTid == 0x7f00_1234)
        #expect(got.sas.ssSp == 0x5000 && got.sas.ssFlags == 2 && got.sas.ssSize == 0x4000)
        #expect(got.pdeathSig == UInt32(SIGTERM))
    }

    @Test("a failing question names the syscall and the task")
    func failureNamesTask() throws {
        let task = RecordingTask()
        task.result = { _ in -Int64(EPERM) }
        #expect {
            _ = try TaskDump.taskWide(of: task, handled: 0)
        } throws: { ($0 as? CheckpointError).map { $0.message.contains("getitimer(0)") && $0.message.contains("pid 42") } == true }
    }
}
