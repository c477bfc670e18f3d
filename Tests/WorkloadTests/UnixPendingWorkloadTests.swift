// UNIX connections a listener holds, not yet accepted, some with data queued: a dump that
// ends the tree carries them (accept order, bytes, records, an fd in flight, EOF behind a
// client that shut down or closed), also on a listener whose file was removed; one that
// leaves the tree running cannot put them back on the listener and refuses.

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
    static let unixPendingUnlinked = Workload(name: "unix-pending", args: ["stream", "unlinked"])
    static let unixPendingLeaveRunning = Workload(name: "unix-pending", args: ["stream"], dumpArgs: ["--leave-running"])
    static let unixPendingOrder = Workload(name: "unix-pending", args: ["seqpacket", "quiet"])
    static let unixPendingOrderLeaveRunning = Workload(name: "unix-pending", args: ["stream", "quiet"], dumpArgs: ["--leave-running"])
    static let unixPendingPasscred = Workload(name: "unix-pending", args: ["stream", "passcred"])
}

extension CheckpointRestoreTests {
    @Suite("UNIX connections not yet accepted")
    struct UnixPending {
        @Test("accept order, bytes and records, an fd in flight, EOF after shutdown or close, carried by a dump that ends the tree",
              arguments: [Workload.unixPendingStream, .unixPendingSeqpacket, .unixPendingUnlinked])
        func carried(_ w: Workload) async throws { try await checkpointRestore(w, .kill) }

        @Test("a leave-running dump refuses them in one line; the workload keeps running untouched")
        func leaveRunningRefused() async throws {
            try await expectRefusedDump(.unixPendingLeaveRunning, "sent data on a connection not yet accepted, which only a dump that ends the tree can carry")
        }

        // Without data only the order is at stake: the clients' entries alone would come
        // back in inode order, which is not the queue's here.
        @Test("connections without data keep the accept order through a dump that ends the tree")
        func orderCarried() async throws { try await checkpointRestore(.unixPendingOrder, .kill) }

        @Test("a leave-running dump refuses an accept order the clients' entries cannot keep; the workload keeps running")
        func orderLeaveRunningRefused() async throws {
            try await expectRefusedDump(.unixPendingOrderLeaveRunning, "queued in an order their clients' entries cannot keep, which only a dump that ends the tree can carry")
        }

        @Test("a listener with SO_PASSCRED: data re-sent by the restore would carry the restorer's credentials, refused; the workload keeps running")
        func passcredRefused() async throws {
            try await expectRefusedDump(.unixPendingPasscred, "gets its sender's credentials (SO_PASSCRED)")
        }
    }
}
