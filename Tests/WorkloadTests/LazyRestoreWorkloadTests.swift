// Lazy restore (issue 14, local mode): `lazy-pages -D DIR` serves the memory of a
// `restore --lazy-pages` on fault and in the background. The workload uses its memory
// while the daemon still holds it back (--background-after), and checks every byte.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let lazy = Workload(name: "lazy", args: ["missing"], restoreArgs: ["--lazy-pages"])
}

/// A lazy-pages daemon serving a run's images.
struct LazyPagesDaemon {
    let pid: pid_t
    let log: String

    /// Started, and listening once this returns.
    init(_ run: WorkloadRun, backgroundAfter: Double, extra: [String] = []) async throws {
        log = run.base + "/lazy-pages.log"
        pid = try Proc.spawn([Paths.binary, "lazy-pages", "-D", run.images, "-o", log, "-v4", "--background-after", "\(backgroundAfter)"] + extra,
                             stdout: run.base + "/lazy-pages.out")
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: run.images + "/lazy-pages.socket") {
            if Date() > deadline { throw TestFailure("lazy-pages did not listen: \(Proc.read(run.base + "/lazy-pages.out") ?? "")") }
            await sleep(0.01)
        }
    }

    var logText: String { Proc.read(log) ?? "(no log)" }
}

@Suite("lazy restore", .serialized)
struct LazyRestoreWorkloadTests {
    /// start, ready, dump (mode), original gone, daemon up, restore --lazy-pages.
    static func lazyRestore(_ mode: Mode, _ w: Workload = .lazy, backgroundAfter: Double) async throws -> (WorkloadRun, LazyPagesDaemon) {
        try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
        let run = try WorkloadRun(w)
        try run.start()
        try await run.waitReady()
        let d = await run.dump(leaveRunning: mode == .leaveRunning)
        try #require(d.status == 0, "dump failed\n\(run.diagnostics())")
        let left = mode == .kill ? await run.reapOriginal() : await run.killOriginal()
        try #require(left.isEmpty, "original processes \(left) still exist\n\(run.diagnostics())")
        let daemon = try await LazyPagesDaemon(run, backgroundAfter: backgroundAfter)
        let r = await run.restore()
        try #require(r.status == 0, "restore failed\n\(run.diagnostics())\n\(daemon.logText)")
        return (run, daemon)
    }

    @Test("pages on fault, a fork, madvise, mremap and munmap before they arrived; checksums and counter as dumped", arguments: Mode.allCases)
    func local(_ mode: Mode) async throws {
        let (run, daemon) = try await Self.lazyRestore(mode, backgroundAfter: 2)
        defer { run.cleanup() }
        await run.expectPass("lazy after \(mode.testDescription) dump + lazy restore")
        let st = await Proc.wait(daemon.pid, timeout: 20)
        if st == nil { Proc.sigkill(daemon.pid); _ = await Proc.wait(daemon.pid, timeout: 10) }
        #expect(st?.status == 0, "lazy-pages: \(st.map(\.description) ?? "still running")\n\(daemon.logText)")
        let log = daemon.logText
        #expect(log.contains("1 forks followed") && !log.contains(" 0 pages on fault") && !log.contains(" 0 in the background"), "\(log.suffix(2000))")
    }

    /// Workloads of other suites, restored lazily: eight threads faulting at once on their
    /// stacks and counters, copy-on-write areas a parent shares with its children (filled
    /// eagerly) beside lazy ones, and 64 MiB of data with a 64 MiB zero area.
    @Test("other workloads restored lazily: threads, a copy-on-write tree (its shared areas stay eager), 64 MiB, madvise/mlock/wipe-on-fork state", arguments: [Workload.threads, .cow, .memorySmall, .madvise], Mode.allCases)
    func others(_ w: Workload, _ mode: Mode) async throws {
        let lazy = Workload(name: w.name, args: w.args, restoreArgs: w.restoreArgs + ["--lazy-pages"])
        let (run, daemon) = try await Self.lazyRestore(mode, lazy, backgroundAfter: 0)
        defer { run.cleanup() }
        if w.name == Workload.madvise.name {
            // It compares each area's VmFlags with the dumped ones: registered areas show
            // `um` until every page has arrived and the userfaultfds are closed.
            // Read to the end: String(contentsOfFile:) stops after the first 4 KiB of a
            // proc file, before the areas, and the wait ended at once.
            let registered = { () -> Bool in
                let smaps = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/\(run.rootPid)/smaps")).readToEnd()).flatMap { $0 }
                let text = smaps.map { String(decoding: $0, as: UTF8.self) } ?? ""
                return !text.contains("VmFlags") || text.contains(" um")
            }
            #expect(waitFor(20) { !registered() },
                    "pid \(run.rootPid) keeps userfaultfd-registered areas after its pages arrived")
        }
        await run.expectPass("\(w.testDescription) after \(mode.testDescription) dump + lazy restore")
        let st = await Proc.wait(daemon.pid, timeout: 20)
        if st == nil { Proc.sigkill(daemon.pid); _ = await Proc.wait(daemon.pid, timeout: 10) }
        #expect(st?.status == 0, "lazy-pages: \(st.map(\.description) ?? "still running")\n\(daemon.logText)")
    }

    @Test("a killed lazy-pages daemon: the restored process is killed, never runs on with zero pages", arguments: Mode.allCases)
    func daemonKilled(_ mode: Mode) async throws {
        let (run, daemon) = try await Self.lazyRestore(mode, backgroundAfter: 30)
        defer { run.cleanup() }
        Proc.sigkill(daemon.pid)
        _ = await Proc.wait(daemon.pid, timeout: 10)
        run.go()
        let deadline = Date().addingTimeInterval(5)
        while run.pids.contains(where: { Proc.exists($0) && Proc.state($0) != "Z" }) && Date() < deadline { await sleep(0.02) }
        #expect(!run.pids.contains { Proc.exists($0) && Proc.state($0) != "Z" }, "restored tree still alive\n\(run.diagnostics())")
        #expect(Proc.read(run.dir + "/result") == nil, "the workload wrote a result without its daemon")
    }

    @Test("restore --lazy-pages without a daemon fails at once, naming the socket; lazy-pages --page-server with no server fails")
    func refusals() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
        let run = try WorkloadRun(.lazy)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let d = await run.dump(leaveRunning: false)
        try #require(d.status == 0, "dump failed\n\(run.diagnostics())")
        _ = await run.reapOriginal()
        let r = await run.restore()
        #expect(r.status == 1 && r.stderrLines.count == 1 && r.stderr.contains("lazy-pages.socket"), "\(r)")
        #expect(!run.pids.contains(where: Proc.exists))
        let ps = await CLI.run(["lazy-pages", "-D", run.images, "--page-server", "--address", "127.0.0.1", "--port", "27"], outputDir: run.base)
        #expect(ps.status == 1 && ps.stderrLines.count == 1 && ps.stderr.contains("cannot connect"), "\(ps)")
    }
}
