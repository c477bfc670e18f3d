// The page server (issue 14, item 2): dump --page-server sends the pages over CRIU's
// page_xfer protocol, page-server writes them, and either side may be CRIU 4.2. Each
// round is a real process with checksummed private and shared memory and a counting
// thread, restored from the directory the dumper and the server shared (as CRIU's page
// server is meant to be used), by us and by CRIU.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let pageServer = Workload(name: "page-server", args: ["16"])
}

enum Implementation: String, Sendable, CustomTestStringConvertible {
    case ours, criu
    var testDescription: String { self == .ours ? "ours" : "CRIU" }
}

/// A page server started with --daemon: it listens once the command returns.
struct PageServerProcess {
    let engine: Implementation
    let pid: pid_t
    let port: UInt16
    let log: String

    static func start(_ engine: Implementation, images: String, base: String, env: [String: String] = [:]) async throws -> PageServerProcess {
        let port = freePort()
        let pidfile = base + "/ps-\(engine.rawValue).pid", log = base + "/ps-\(engine.rawValue).log"
        let args = ["page-server", "-D", images, "--address", "127.0.0.1", "--port", "\(port)", "-d", "--pidfile", pidfile, "-o", log, "-v4"]
        mkdir(images, 0o700)
        switch engine {
        case .ours:
            let r = await CLI.run(args, env: env, outputDir: base, timeout: 30)
            try #require(r.status == 0, "our page server did not start\n\(r)")
        case .criu:
            let r = try await ReferenceCriu.run(args, log: base + "/criu-ps.out", timeout: 30)
            try #require(r.status == 0, "CRIU's page server did not start\n\(r)")
        }
        let pid = try #require(Proc.read(pidfile).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }, "no pidfile")
        return PageServerProcess(engine: engine, pid: pid, port: port, log: log)
    }

    /// The server ended its session cleanly: its log says so and it is gone.
    func expectFinished() async {
        let done = engine == .ours ? "page server: session over" : "Session over"
        let gone = await waitGone()
        #expect(gone && (Proc.read(log) ?? "").contains(done), "\(engine.testDescription) page server: \(gone ? "exited" : "still running"); log:\n\(Proc.read(log)?.suffix(3000) ?? "none")")
    }

    func waitGone() async -> Bool {
        for _ in 0..<500 {
            var st: Int32 = 0
            _ = waitpid(pid, &st, WNOHANG)  // ours when the test is a subreaper
            if !Proc.exists(pid) || Proc.state(pid) == "Z" { return true }
            await sleep(0.01)
        }
        return false
    }

    func stop() {
        if Proc.exists(pid) && Proc.state(pid) != "Z" { Proc.sigkill(pid) }
        var st: Int32 = 0
        _ = waitpid(pid, &st, WNOHANG)
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
func freePort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return UInt16(bigEndian: a.sin_port)
}

/// Dumps `run` with `dumper` to the page server on `port` (the other images in `run.images`).
func pageServerDump(_ run: WorkloadRun, _ dumper: Implementation, port: UInt16, leaveRunning: Bool) async throws -> CLIResult {
    let args = ["dump", "-t", "\(run.rootPid)", "-D", run.images, "-o", run.dumpLog, "-v4",
                "--page-server", "--address", "127.0.0.1", "--port", "\(port)"] + (leaveRunning ? ["--leave-running"] : [])
    if dumper == .ours { return await CLI.run(args, outputDir: run.base, timeout: 60) }
    return try await ReferenceCriu.run(args, log: run.base + "/criu-dump.out", timeout: 60)
}

@Suite("page server", .serialized)
struct PageServerTests {
    struct Round: Sendable, CustomTestStringConvertible {
        var dumper: Implementation, server: Implementation, restorer: Implementation
        var testDescription: String {
            "\(dumper.testDescription) dump → \(server.testDescription) page server → \(restorer.testDescription) restore"
        }
    }

    static let rounds: [Round] = [
        Round(dumper: .ours, server: .ours, restorer: .ours),
        Round(dumper: .ours, server: .ours, restorer: .criu),
        Round(dumper: .ours, server: .criu, restorer: .ours),
        Round(dumper: .criu, server: .ours, restorer: .ours),
        Round(dumper: .criu, server: .ours, restorer: .criu),
    ]

    @Test("memory, shared memory and a counter arrive through the page server", arguments: rounds, Mode.allCases)
    func round(_ r: Round, _ mode: Mode) async throws {
        if [r.dumper, r.server, r.restorer].contains(.criu) { try #require(ReferenceCriu.available, ReferenceCriu.reason) }
        let run = try WorkloadRun(.pageServer)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let server = try await PageServerProcess.start(r.server, images: run.images, base: run.base)
        defer { server.stop() }
        let d = try await pageServerDump(run, r.dumper, port: server.port, leaveRunning: mode == .leaveRunning)
        try #require(d.status == 0, "dump failed\n\(d)\n\(run.diagnostics())")
        await server.expectFinished()
        // The pages came through the server: its page ids (from 0x10001), none of the dumper's own.
        let names = (try? FileManager.default.contentsOfDirectory(atPath: run.images)) ?? []
        #expect(names.contains("pagemap-\(run.rootPid).img") && names.contains("pages-65537.img") && !names.contains("pages-1.img"),
                "images: \(names.sorted())")
        let left = mode == .kill ? await run.reapOriginal() : await run.killOriginal()
        try #require(left.isEmpty, "original processes \(left) still exist\n\(run.diagnostics())")
        if r.restorer == .ours {
            let rs = await run.restore()
            try #require(rs.status == 0, "our restore failed\n\(run.diagnostics())")
        } else {
            let rs = try await ReferenceCriu.run(["restore", "-D", run.images, "-d", "--pidfile", run.pidfile, "-o", run.restoreLog, "-v4"],
                                                 log: run.base + "/criu-restore.out")
            try #require(rs.status == 0, "CRIU's restore failed\n\(rs)\n\(run.diagnostics())")
        }
        #expect(run.restoredPid == run.rootPid)
        await run.expectPass("\(r.testDescription), \(mode.testDescription)")
    }

    @Test("no page server listening: the dump fails in one line naming it, the workload runs on")
    func notListening() async throws {
        let run = try WorkloadRun(.pageServer)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let port = freePort()
        let d = try await pageServerDump(run, .ours, port: port, leaveRunning: false)
        try expectRefused(d, run, naming: "page server 127.0.0.1:\(port)")
        await run.expectPass("after the refused dump")
    }

    @Test("the page server killed mid-dump: the dump fails in one line naming it, the workload runs on")
    func serverKilled() async throws {
        let run = try WorkloadRun(.pageServer)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let server = try await PageServerProcess.start(.ours, images: run.images, base: run.base, env: ["OCICHECKPOINT_FAULT": "page-server-killed"])
        defer { server.stop() }
        let d = try await pageServerDump(run, .ours, port: server.port, leaveRunning: false)
        #expect(await server.waitGone(), "the page server did not die at its fault point")
        try expectRefused(d, run, naming: "page server 127.0.0.1:\(server.port)")
        await run.expectPass("after the dump that lost its page server")
    }

    private func expectRefused(_ d: CLIResult, _ run: WorkloadRun, naming: String) throws {
        #expect(d.status == 1, "the dump did not fail\n\(d)\n\(run.diagnostics())")
        #expect(d.stderrLines.count == 1 && d.stderr.contains(naming), "stderr: \(d.stderr)")
        #expect(!FileManager.default.fileExists(atPath: run.images + "/inventory.img"))
        #expect(run.runningUntraced() == nil, "\(run.runningUntraced() ?? "")")
    }
}
