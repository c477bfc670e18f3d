// UNIX sockets in the states a queue or a removed name leaves behind: descriptions only a
// queue holds (files, sockets with their own queues, chains of them), datagram sockets with
// queued data and neither a name nor a live peer, and names whose file is gone (unlinked,
// replaced by a FIFO or a regular file, its directory removed) that clients connected
// through.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let unixQueueOnly = Workload(name: "unix-queue-only")
    static let unixQueueOnlyEpoll = Workload(name: "unix-queue-only", args: ["epoll"])
    static let unixPendingData = Workload(name: "unix-queue-only", args: ["pending-data"], dumpArgs: ["--leave-running"])
    static let unixGhost = Workload(name: "unix-ghost")
}

extension CheckpointRestoreTests {
    @Suite("UNIX socket states")
    struct UnixSocketStates {
        @Test("fds only a queue holds (file, socket with its queue, a chain), unnamed datagram queues, closed peers", arguments: Mode.allCases)
        func queueOnly(_ mode: Mode) async throws { try await checkpointRestore(.unixQueueOnly, mode) }

        @Test("names whose file is gone: FIFO or file in its place, directory removed, clients connected through it", arguments: Mode.allCases)
        func ghostNames(_ mode: Mode) async throws { try await checkpointRestore(.unixGhost, mode) }

        @Test("an epoll only a queue holds is refused, naming the socket; workload keeps running")
        func epollInFlight() async throws {
            try await expectRefused(.unixQueueOnlyEpoll, ["eventpoll", "only a UNIX socket's queue holds cannot be dumped"])
        }

        @Test("data sent on a connection not yet accepted is refused by a leave-running dump with the reason; workload keeps running")
        func pendingConnectionData() async throws {
            try await expectRefused(.unixPendingData, ["sent data on a connection not yet accepted", "no way to read it but accept(2)"])
        }

        private func expectRefused(_ w: Workload, _ words: [String]) async throws {
            try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
            let run = try WorkloadRun(w)
            defer { run.cleanup() }
            try run.start()
            try await run.waitReady()
            let d = await run.dump(leaveRunning: false)
            #expect(d.status != 0, "dump succeeded\n\(d)")
            #expect(d.stderr.contains("pid \(run.rootPid) fd ") && words.allSatisfy { d.stderr.contains($0) }, "\(d)")
            #expect(run.runningUntraced() == nil, "after the refused dump: \(run.runningUntraced() ?? "")")
            #expect(!FileManager.default.fileExists(atPath: run.images + "/inventory.img"))
            await run.expectPass("workload after the refused dump")
        }
    }
}

// CRIU 4.2's images of these states, read by our restore. The other way fails in CRIU
// itself: its restore of its own dump of unix-queue-only hits "BUG at criu/files.c:244"
// (a UNIX socket only a queue holds), and of unix-ghost leaves sub/ behind (a missing
// directory of a relative name is made but not removed, bind_on_deleted).
@Suite("UNIX socket states from CRIU 4.2", .serialized, .enabled(if: ReferenceCriu.available, ReferenceCriu.reason))
struct UnixSocketStatesCriuInteropTests {
    @Test("CRIU's dump of queue-only fds, unnamed datagram queues, closed peers; and of names whose file is gone",
          arguments: [Workload.unixQueueOnly, .unixGhost])
    func fromCriu(_ w: Workload) async throws { try await crossRestore(w, .criuToOurs) }
}
