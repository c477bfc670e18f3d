// UNIX sockets through real dump and restore: socketpairs of every type with queues in
// both directions, named and abstract listeners with pending connections, datagram
// servers, connections across processes of the tree, and peers outside the tree.
//
// Leave-running with bound paths: the harness kills the original after the dump, so its
// socket files stay behind; the restore replaces a stale socket file at a dumped name
// (as CRIU does), which would also take the name from an original still running.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let unixPair = Workload(name: "unix-pair")
    static let unixListen = Workload(name: "unix-listen")
    static let unixExternal = Workload(name: "unix-ext")
    static let unixExternalStream = Workload(name: "unix-ext", args: ["stream"])
    static let unixInFlight = Workload(name: "unix-inflight")
    static let unixInFlightClosed = Workload(name: "unix-inflight", args: ["closed"])
}

extension CheckpointRestoreTests {
    @Suite("UNIX sockets")
    struct UnixSockets {
        @Test("socketpairs (stream, dgram, seqpacket) keep queues both ways, options, shutdown", arguments: Mode.allCases)
        func socketpairs(_ mode: Mode) async throws { try await checkpointRestore(.unixPair, mode) }

        @Test("path and abstract listeners accept pending and new connections; dgram server keeps its queue", arguments: Mode.allCases)
        func named(_ mode: Mode) async throws { try await checkpointRestore(.unixListen, mode) }

        @Test("fds in flight (SCM_RIGHTS) that the tree holds arrive again as the same open files", arguments: Mode.allCases)
        func inFlight(_ mode: Mode) async throws { try await checkpointRestore(.unixInFlight, mode) }

        @Test("an fd in flight that only the queue holds arrives again", arguments: Mode.allCases)
        func inFlightOnlyInQueue(_ mode: Mode) async throws { try await checkpointRestore(.unixInFlightClosed, mode) }

        @Test("crit decodes the UNIX socket entries and queues we write")
        func critDecodesSockets() async throws {
            try requireBinary()
            let run = try WorkloadRun(.unixListen)
            defer { run.cleanup() }
            try run.start()
            try await run.waitReady()
            let d = await run.dump(leaveRunning: true)
            try #require(d.status == 0, "dump failed\n\(run.diagnostics())")
            let files = try critJSON(run, "files.img")
            let sockets = files.compactMap { $0["usk"] as? [String: Any] }
            let listeners = sockets.filter { ($0["state"] as? Int) == 10 }
            #expect(listeners.count == 2, "listeners in files.img: \(listeners)")
            #expect(sockets.contains { ($0["name"] as? String)?.contains("l.sock") == true }, "no socket named l.sock: \(sockets)")
            let queues = try critJSON(run, "sk-queues.img")
            #expect(queues.compactMap { $0["length"] as? Int }.sorted() == [4, 5, 9, 60, 300, 500], "sk-queues.img: \(queues)")
            await run.expectPass("original after a leave-running dump")
        }

        @Test("peer outside the tree: refused without --ext-unix-sk (workload keeps running), restored with it")
        func externalDatagramPeer() async throws {
            try requireBinary()
            let run = try WorkloadRun(.unixExternal)
            defer { run.cleanup() }
            try run.start()
            try await run.waitReady()
            let refused = await dump(run, extra: [])
            #expect(refused.status != 0, "dump with an outside peer succeeded without --ext-unix-sk\n\(refused)")
            #expect(refused.stderr.contains("UNIX socket connected to a peer outside the dumped tree (inode") && refused.stderr.contains("dump with --ext-unix-sk"),
                    "\(refused)")
            #expect(run.runningUntraced() == nil, "after the refused dump: \(run.runningUntraced() ?? "")")
            #expect(!FileManager.default.fileExists(atPath: run.images + "/inventory.img"))

            let d = await dump(run, extra: ["--ext-unix-sk"])
            try #require(d.status == 0, "dump with --ext-unix-sk failed\n\(d)\n\(run.diagnostics())")
            let left = await run.reapOriginal()
            try #require(left.isEmpty, "original processes \(left) still exist")
            let r = await run.restore()
            try #require(r.status == 0, "restore failed\n\(run.diagnostics())")
            await run.expectPass("datagram socket reconnected to its outside peer")
        }

        @Test("stream peer outside the tree is refused even with --ext-unix-sk; workload keeps running")
        func externalStreamPeer() async throws {
            try requireBinary()
            let run = try WorkloadRun(.unixExternalStream)
            defer { run.cleanup() }
            try run.start()
            try await run.waitReady()
            let d = await dump(run, extra: ["--ext-unix-sk"])
            #expect(d.status != 0, "dump of a stream socket with an outside peer succeeded\n\(d)")
            #expect(d.stderr.contains("cannot be reconnected"), "\(d)")
            #expect(run.runningUntraced() == nil, "after the refused dump: \(run.runningUntraced() ?? "")")
            await run.expectPass("workload after the refused dump")
        }

        private func requireBinary() throws {
            try #require(FileManager.default.isExecutableFile(atPath: Paths.binary),
                         "no CLI at \(Paths.binary): run `swift build` or set OCICHECKPOINT_BIN")
        }

        private func dump(_ run: WorkloadRun, extra: [String]) async -> CLIResult {
            await CLI.run(["dump", "-t", "\(run.rootPid)", "-D", run.images, "-o", run.dumpLog, "-v4"] + extra, outputDir: run.base)
        }

        private func critJSON(_ run: WorkloadRun, _ name: String) throws -> [[String: Any]] {
            let out = run.base + "/crit-\(name).json", err = run.base + "/crit.err"
            let pid = try Proc.spawn([Paths.python, Paths.crit, "decode", "-i", run.images + "/" + name], stdout: out, stderr: err, append: false)
            let st = Spawn.wait(pid, timeout: 120)
            try #require(st?.exited == true && st?.code == 0, "crit decode \(name): \(Proc.read(err) ?? "")")
            let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any]
            return obj?["entries"] as? [[String: Any]] ?? []
        }
    }
}
