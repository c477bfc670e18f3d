// Process state that a restore must give back exactly: what a parent's wait sees of its
// stopped and dead children, scheduling, credentials and seccomp per thread, shared fd
// tables, rlimits. Each workload compares after the restore with what it saw before.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let stopSignals = Workload(name: "stop-signals")
    static let schedIds = Workload(name: "sched-ids")
    static let seccompThreads = Workload(name: "seccomp-threads")
    static let seccompStrict = Workload(name: "seccomp-threads", args: ["strict"])
    static let seccompTsync = Workload(name: "seccomp-threads", args: ["tsync"])
}

@Suite("process state", .serialized)
struct ProcessStateTests {
    @Test("stop signals (STOP, TSTP, TTIN, TTOU, a pending TRAP) and zombies' exit codes, signals and core flag as wait sees them",
          arguments: Mode.allCases)
    func stopSignals(_ mode: Mode) async throws { try await checkpointRestore(.stopSignals, mode) }

    @Test("SCHED_OTHER/BATCH/IDLE/FIFO/RR per thread with nice, priority and SCHED_RESET_ON_FORK; loginuid; membarrier registrations",
          arguments: Mode.allCases)
    func schedIds(_ mode: Mode) async throws { try await checkpointRestore(.schedIds, mode) }

    @Test("a seccomp filter installed with TSYNC and a second one in one thread only; a later TSYNC names that thread",
          arguments: Mode.allCases)
    func seccompThreads(_ mode: Mode) async throws { try await checkpointRestore(.seccompThreads, mode) }

    @Test("threads keep sharing a filter: one installed with TSYNC after the restore reaches them all",
          arguments: Mode.allCases)
    func seccompTsync(_ mode: Mode) async throws { try await checkpointRestore(.seccompTsync, mode) }

    @Test("a child in seccomp strict mode waiting in read() stays in strict mode", arguments: Mode.allCases)
    func seccompStrict(_ mode: Mode) async throws { try await checkpointRestore(.seccompStrict, mode) }
}
