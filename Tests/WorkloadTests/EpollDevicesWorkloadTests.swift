// epoll registrations whose fd number was closed since (the file held by a dup), and
// character devices reopened by path (console, virtual terminals): restored for real in
// both modes, and what stays refused.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let epollClosed = Workload(name: "epoll-closed")
    static let epollOrphan = Workload(name: "epoll-closed", args: ["orphan"])
    static let devices = Workload(name: "devices")
    static let devicesKmsg = Workload(name: "devices", args: ["kmsg"])
    static let devicesAlone = Workload(name: "devices", args: ["alone"])
}

extension CheckpointRestoreTests {
    @Suite("epoll closed targets and devices")
    struct EpollDevices {
        @Test("epoll: a registration by a closed fd number whose pipe a dup holds", arguments: Mode.allCases)
        func epollClosed(_ mode: Mode) async throws { try await checkpointRestore(.epollClosed, mode) }

        @Test("console and virtual terminals reopened by path: same device, flags, offset", arguments: Mode.allCases)
        func devices(_ mode: Mode) async throws {
            // Held outside the tree, as a getty or login shell holds them: a terminal's last
            // close resets it, and the dump refuses one nothing else holds.
            let held = ["/dev/console", "/dev/tty0", "/dev/tty1", "/dev/tty63"].map { (path: String) in open(path, O_WRONLY | O_NOCTTY) }
            defer { for fd in held where fd >= 0 { close(fd) } }
            try #require(held.allSatisfy { $0 >= 0 }, "cannot open the terminals")
            try await checkpointRestore(.devices, mode)
        }

        @Test("refused at dump with one line; the workload keeps running",
              arguments: zip([Workload.epollOrphan, .devicesKmsg, .devicesAlone],
                             ["no fd of this process holds that file", "character device /dev/kmsg", "terminal /dev/tty62 is held by no process outside"]))
        func refused(_ w: Workload, _ reason: String) async throws {
            try await expectRefusedDump(w, reason)
        }
    }
}
