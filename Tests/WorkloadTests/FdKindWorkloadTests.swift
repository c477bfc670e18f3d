// eventfd, signalfd, timerfd, epoll, inotify, fanotify, memfd and pidfd: each dumped and
// restored for real in both modes, crit reading the images, and what is refused.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let eventfd = Workload(name: "eventfd")
    static let signalfd = Workload(name: "signalfd")
    static let timerfd = Workload(name: "timerfd")
    static let epoll = Workload(name: "epoll")
    static let inotify = Workload(name: "inotify")
    static let fanotify = Workload(name: "fanotify")
    static let memfd = Workload(name: "memfd")
    static let pidfd = Workload(name: "pidfd")
    static let pidfdOutside = Workload(name: "pidfd", args: ["outside"])
    static let pidfdZombie = Workload(name: "pidfd", args: ["zombie"])
    static let epollReplaced = Workload(name: "epoll", args: ["replaced"])
    static let inotifyPending = Workload(name: "inotify", args: ["pending"])
}

extension CheckpointRestoreTests {
    @Suite("fd kinds")
    struct FdKinds {
        @Test("eventfd: counter beyond 32 bits, semaphore mode, non-blocking", arguments: Mode.allCases)
        func eventfd(_ mode: Mode) async throws { try await checkpointRestore(.eventfd, mode) }

        @Test("signalfd: mask, queued signal, a signal sent after restore", arguments: Mode.allCases)
        func signalfd(_ mode: Mode) async throws { try await checkpointRestore(.signalfd, mode) }

        @Test("timerfd: interval, absolute realtime, unread expiry, never early", arguments: Mode.allCases)
        func timerfd(_ mode: Mode) async throws { try await checkpointRestore(.timerfd, mode) }

        @Test("epoll: same readiness and data, nested epoll, MOD/DEL by fd number", arguments: Mode.allCases)
        func epoll(_ mode: Mode) async throws { try await checkpointRestore(.epoll, mode) }

        @Test("inotify: watch descriptors kept, events after restore", arguments: Mode.allCases)
        func inotify(_ mode: Mode) async throws { try await checkpointRestore(.inotify, mode) }

        @Test("fanotify: inode mark reports a close-after-write", arguments: Mode.allCases)
        func fanotify(_ mode: Mode) async throws { try await checkpointRestore(.fanotify, mode) }

        @Test("memfd: name, size, contents, offset, seals, shared with its mapping", arguments: Mode.allCases)
        func memfd(_ mode: Mode) async throws { try await checkpointRestore(.memfd, mode) }

        @Test("pidfd of a child: poll, pidfd_send_signal, waitid(P_PIDFD)", arguments: Mode.allCases)
        func pidfd(_ mode: Mode) async throws { try await checkpointRestore(.pidfd, mode) }

        @Test("pidfd of an unreaped zombie child: readable, waitid(P_PIDFD) gets its status", arguments: Mode.allCases)
        func pidfdZombie(_ mode: Mode) async throws { try await checkpointRestore(.pidfdZombie, mode) }

        /// crit 3.17 predates pidfds (fd type 20), so the pidfd workload is not among these.
        @Test("crit decodes the images of every fd kind", arguments: [Workload.eventfd, .signalfd, .timerfd, .epoll, .inotify, .fanotify, .memfd])
        func critDecodes(_ w: Workload) async throws {
            try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
            try #require(FileManager.default.fileExists(atPath: Paths.crit), "crit is not installed (Debian package criu)")
            let run = try WorkloadRun(w)
            defer { run.cleanup() }
            try run.start()
            try await run.waitReady()
            let d = await run.dump(leaveRunning: true)
            try #require(d.status == 0, "dump failed\n\(run.diagnostics())")
            let names = try FileManager.default.contentsOfDirectory(atPath: run.images)
                .filter { $0.hasSuffix(".img") && !$0.hasPrefix("pages-") }.sorted()
            var failures: [String] = []
            var filesJSON = ""
            for name in names {
                let out = run.base + "/crit.out", err = run.base + "/crit.err"
                let pid = try Proc.spawn([Paths.python, Paths.crit, "decode", "-i", run.images + "/" + name],
                                         stdout: out, stderr: err, append: false)
                let st = await Proc.wait(pid, timeout: 120)
                if st == nil { Proc.sigkill(pid); _ = Spawn.wait(pid, timeout: 5) }
                if st?.exited != true || st?.code != 0 {
                    failures.append("\(name): \(st.map { $0.description } ?? "timeout"): \((Proc.read(err) ?? "").suffix(1500))")
                }
                if name == "files.img" { filesJSON = Proc.read(out) ?? "" }
            }
            #expect(failures.isEmpty, "crit decode failed:\n\(failures.joined(separator: "\n"))")
            let kind = ["eventfd": "EVENTFD", "signalfd": "SIGNALFD", "timerfd": "TIMERFD", "epoll": "EVENTPOLL",
                        "inotify": "INOTIFY", "fanotify": "FANOTIFY", "memfd": "MEMFD"][w.name]!
            #expect(filesJSON.contains("\"\(kind)\""), "files.img has no \(kind) entry:\n\(filesJSON.prefix(3000))")
            if w.name == "memfd" { #expect(names.contains("memfd.img"), "no memfd.img among \(names)") }
            await run.expectPass("\(w.name) after a leave-running dump")
        }

        @Test("refused at dump with one line; the workload keeps running",
              arguments: zip([Workload.pidfdOutside, .epollReplaced, .inotifyPending],
                             ["outside the dumped tree", "which the image cannot name", "unread events"]))
        func refused(_ w: Workload, _ reason: String) async throws {
            try await expectRefusedDump(w, reason)
        }
    }
}
