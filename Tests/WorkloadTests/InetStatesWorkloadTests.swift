// TCP connections in every state, both ends inside the dumped tree on loopback, across a
// real dump and restore: the workloads check states, queued bytes, EOFs and errors.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static func tcpStates(_ family: String) -> Workload { Workload(name: "tcp-states", args: [family]) }
}

@Suite("inet socket states", .serialized)
struct InetStatesWorkloadTests {
    @Test("TCP in FIN_WAIT1/2, CLOSE_WAIT, CLOSING, LAST_ACK, reset, full queues, unconnected and bound",
          arguments: ["4", "6", "m"], Mode.allCases)
    func states(_ family: String, _ mode: Mode) async throws {
        try await checkpointRestore(.tcpStates(family), mode, dump: ["--tcp-established"], restore: ["--tcp-established"])
    }
}

/// checkpointRestore with options for dump and restore.
/// `between` runs after the dump, once the original is gone.
func checkpointRestore(_ w: Workload, _ mode: Mode, dump: [String], restore: [String], resultTimeout: Double = 30,
                       between: (WorkloadRun) throws -> Void = { _ in }) async throws {
    try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
    let run = try WorkloadRun(w)
    defer { run.cleanup() }
    try run.start()
    try await run.waitReady()
    let d = await CLI.run(["dump", "-t", "\(run.rootPid)", "-D", run.images, "-o", run.dumpLog, "-v4"] + dump
                          + (mode == .leaveRunning ? ["--leave-running"] : []), outputDir: run.base)
    try #require(d.status == 0, "dump failed\n\(d)\n\(run.diagnostics())")
    let left = mode == .kill ? await run.reapOriginal() : await run.killOriginal()
    try #require(left.isEmpty, "original processes \(left) still exist\n\(run.diagnostics())")
    try between(run)
    let r = await CLI.run(["restore", "-D", run.images, "-d", "--pidfile", run.pidfile, "-o", run.restoreLog, "-v4"] + restore,
                          outputDir: run.base)
    try #require(r.status == 0, "restore failed\n\(r)\n\(run.diagnostics())")
    await run.expectPass("\(w.testDescription) after \(mode.testDescription) dump + restore", timeout: resultTimeout)
}

extension InetStatesWorkloadTests {
    @Test("without --tcp-established a half-closed connection refuses the dump in one line; the workload runs on")
    func halfClosedRefused() async throws {
        let run = try WorkloadRun(.tcpStates("4"))
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let d = await CLI.run(["dump", "-t", "\(run.rootPid)", "-D", run.images, "-o", run.dumpLog], outputDir: run.base)
        #expect(d.status != 0)
        let line = d.stderrLines.last.map(String.init) ?? ""
        #expect(line.contains("pid \(run.rootPid) fd ") && line.contains(": TCP connection 127.0.0.1:")
                && line.hasSuffix("is in state FIN_WAIT2; dump with --tcp-established"), "\(d)")
        #expect(!FileManager.default.fileExists(atPath: run.images + "/inventory.img"))
        #expect(run.runningUntraced() == nil)
        await run.expectPass("tcp-states after a refused dump")
    }
}

extension InetStatesWorkloadTests {
    @Test("connections not yet accepted come back with their queued bytes (a dump that ends the tree)")
    func inFlight() async throws {
        try await checkpointRestore(Workload(name: "tcp-inflight"), .kill, dump: ["--tcp-established"], restore: ["--tcp-established"])
    }

    @Test("a leave-running dump refuses connections not yet accepted in one line and leaves them queued")
    func inFlightLeaveRunning() async throws {
        let run = try WorkloadRun(Workload(name: "tcp-inflight"))
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let d = await CLI.run(["dump", "-t", "\(run.rootPid)", "-D", run.images, "-o", run.dumpLog, "--tcp-established", "--leave-running"],
                              outputDir: run.base)
        #expect(d.status != 0)
        let line = d.stderrLines.last.map(String.init) ?? ""
        #expect(line.contains(": TCP listener 127.0.0.1:") && line.hasSuffix("has 2 connections not yet accepted, which only a dump that ends the tree can take off it (or dump with --skip-in-flight)"), "\(d)")
        #expect(run.runningUntraced() == nil)
        await run.expectPass("tcp-inflight after a refused dump")
    }
}

extension InetStatesWorkloadTests {
    @Test("a connect in SYN_SENT (its SYN dropped by a full backlog) connects after restore")
    func synSent() async throws {
        try await checkpointRestore(Workload(name: "tcp-syn-sent"), .kill, dump: ["--tcp-established"], restore: ["--tcp-established"])
    }
}

extension InetStatesWorkloadTests {
    @Test("a connection not yet accepted from a client outside the tree refuses the dump and stays queued")
    func inFlightFromOutside() async throws {
        let run = try WorkloadRun(Workload(name: "tcp-inflight"))
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let port = Int((Proc.read(run.dir + "/port") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        let outsider = try TestSocket.connect(family: AF_INET, port: port, rcvbuf: 0)
        defer { outsider.close() }
        let d = await CLI.run(["dump", "-t", "\(run.rootPid)", "-D", run.images, "-o", run.dumpLog, "--tcp-established"], outputDir: run.base)
        #expect(d.status != 0)
        let line = d.stderrLines.last.map(String.init) ?? ""
        #expect(line.contains("has a connection not yet accepted from 127.0.0.1:\(outsider.localPort), outside the dumped tree"), "\(d)")
        #expect(run.runningUntraced() == nil)
        // The workload finds its own two connections intact, and ours still queued after them.
        run.go()
        let r = await run.waitResult(timeout: 20)
        #expect(r == "FAIL: a third connection was pending\n", "\(r ?? "no result")\n\(run.diagnostics())")
    }
}
