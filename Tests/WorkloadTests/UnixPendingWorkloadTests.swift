// UNIX connections a listener holds, not yet accepted, some with data queued: a dump that
// ends the tree carries them (accept order, bytes, records, an fd in flight, EOF behind a
// client that shut down or closed); one that leaves the tree running cannot put them back
// on the listener and refuses.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let unixPendingStream = Workload(name: "unix-pending", args: ["stream"])
    static let unixPendingSeqpacket = Workload(name: "unix-pending", args: ["seqpacket"])
    static let unixPendingLeaveRunning = Workload(name: "unix-pending", args: ["stream"], dumpArgs: ["--leave-running"])
}

extension CheckpointRestoreTests {
    @Suite("UNIX connections not yet accepted")
    struct UnixPending {
        @Test("accept order, bytes and records, an fd in flight, EOF after shutdown or close, carried by a dump that ends the tree",
              arguments: [Workload.unixPendingStream, .unixPendingSeqpacket])
        func carried(_ w: Workload) async throws { try await checkpointRestore(w, .kill) }

        @Test("a leave-running dump refuses them in one line; the workload keeps running untouched")
        func leaveRunningRefused() async throws {
            try await expectRefusedDump(.unixPendingLeaveRunning, "sent data on a connection not yet accepted, which only a dump that ends the tree can carry")
        }
    }
}
