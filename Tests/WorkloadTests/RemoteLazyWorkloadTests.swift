// Remote lazy pages (issue 14, item 3): `dump --lazy-pages --address --port` leaves the
// lazy areas' pages out of the images and serves them; `lazy-pages --page-server` takes
// them with PS_IOV_GET for a `restore --lazy-pages`. The lazy workload uses its memory
// (a fork, madvise, mremap, munmap) while the pages are still on the dump's side.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A dump --lazy-pages, serving its lazy pages once the images are written.
struct LazyDumpProcess {
    let pid: pid_t
    let port: Int
    let out: String

    init(_ run: WorkloadRun, leaveRunning: Bool) async throws {
        port = try Self.freePort()
        out = run.base + "/lazy-dump.out"
        // Named through a link: killOriginal kills every process whose command line names
        // the run's directory, and this one must outlive the original.
        let link = "/tmp/ocw-lazy-dump-\(port)"
        unlink(link)
        guard symlink(run.base, link) == 0 else { throw TestFailure("symlink \(link)") }
        defer { unlink(link) }
        var args = [Paths.binary, "dump", "-t", "\(run.pids[0])", "-D", link + "/img", "-o", link + "/dump.log", "-v4",
                    "--lazy-pages", "--address", "127.0.0.1", "--port", "\(port)"]
        if leaveRunning { args.append("--leave-running") }
        pid = try Proc.spawn(args, stdout: out)
        let deadline = Date().addingTimeInterval(20)
        // Logged once every image is written and the tree's final state applied; the link
        // goes only then (the dump opens the image directory by path until the end).
        while !(Proc.read(run.dumpLog) ?? "").contains("lazy pages: serving") {
            if let st = await Proc.wait(pid, timeout: 0) { throw TestFailure("dump --lazy-pages ended (\(st)) before its images: \(Proc.read(out) ?? "")\n\(run.diagnostics())") }
            if Date() > deadline { throw TestFailure("dump --lazy-pages does not serve\n\(run.diagnostics())") }
            await sleep(0.01)
        }
    }

    /// A port nobody listens on now (the kernel's choice for port 0).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw TestFailure("no free port") }
        return Int(UInt16(bigEndian: a.sin_port))
    }
}

@Suite("remote lazy pages", .serialized)
struct RemoteLazyWorkloadTests {
    /// start, ready, dump --lazy-pages (mode), original gone, daemon from the dump's port,
    /// restore --lazy-pages.
    static func remoteLazyRestore(_ mode: Mode, _ w: Workload = .lazy, backgroundAfter: Double) async throws -> (WorkloadRun, LazyDumpProcess, LazyPagesDaemon) {
        try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
        let run = try WorkloadRun(w)
        try run.start()
        try await run.waitReady()
        let dump = try await LazyDumpProcess(run, leaveRunning: mode == .leaveRunning)
        let left = mode == .kill ? await run.reapOriginal() : await run.killOriginal()
        try #require(left.isEmpty, "original processes \(left) still exist\n\(run.diagnostics())")
        // Without the daemon the lazy runs would read zero: refused, in one line.
        let eager = await CLI.run(["restore", "-D", run.images, "-d"], outputDir: run.base)
        #expect(eager.status == 1 && eager.stderrLines.count == 1 && eager.stderr.contains("restore with --lazy-pages"), "\(eager)")
        let daemon = try await LazyPagesDaemon(run, backgroundAfter: backgroundAfter, extra: ["--page-server", "--address", "127.0.0.1", "--port", "\(dump.port)"])
        let r = await run.restore()
        try #require(r.status == 0, "restore failed\n\(run.diagnostics())\n\(daemon.logText)")
        return (run, dump, daemon)
    }

    @Test("dump --lazy-pages serves, lazy-pages --page-server fetches: checksums, counter, a fork and madvise/mremap/munmap while pages are missing", arguments: Mode.allCases)
    func served(_ mode: Mode) async throws {
        let (run, dump, daemon) = try await Self.remoteLazyRestore(mode, backgroundAfter: 2)
        defer { run.cleanup(); Proc.sigkill(dump.pid) }
        await run.expectPass("lazy after \(mode.testDescription) dump --lazy-pages + remote lazy restore")
        let st = await Proc.wait(daemon.pid, timeout: 20)
        if st == nil { Proc.sigkill(daemon.pid); _ = await Proc.wait(daemon.pid, timeout: 10) }
        #expect(st?.status == 0, "lazy-pages: \(st.map(\.description) ?? "still running")\n\(daemon.logText)")
        let log = daemon.logText
        #expect(log.contains("1 forks followed") && !log.contains(" 0 pages on fault") && !log.contains(" 0 in the background"), "\(log.suffix(2000))")
        let ds = await Proc.wait(dump.pid, timeout: 10)
        #expect(ds?.status == 0, "dump: \(ds.map(\.description) ?? "still serving")\n\(Proc.read(run.dumpLog)?.suffix(2000) ?? "")")
        let dumpLog = Proc.read(run.dumpLog) ?? ""
        // Pages came from the dump (the 8 MiB area E alone is 2048); those the workload
        // dropped with madvise and munmap before they arrived were never asked for.
        let line = dumpLog.split(separator: "\n").first { $0.contains("pages served; session over") }
        let counts = line.map { $0.split(separator: " ").compactMap { Int($0) } } ?? []
        #expect(counts.count >= 2 && counts[counts.count - 2] > 2048 && counts[counts.count - 2] < counts[counts.count - 1], "\(dumpLog.suffix(2000))")
    }

    @Test("the dump killed mid-transfer: the restored process, or every process of a restored tree, is killed, never runs on with zero pages",
          arguments: [Workload.lazy, .lazyTree])
    func sourceKilled(_ w: Workload) async throws {
        let (run, dump, daemon) = try await Self.remoteLazyRestore(.kill, w, backgroundAfter: 30)
        defer { run.cleanup(); Proc.sigkill(daemon.pid) }
        Proc.sigkill(dump.pid)
        _ = await Proc.wait(dump.pid, timeout: 10)
        run.go()
        let deadline = Date().addingTimeInterval(5)
        while run.pids.contains(where: { Proc.exists($0) && Proc.state($0) != "Z" }) && Date() < deadline { await sleep(0.02) }
        #expect(!run.pids.contains { Proc.exists($0) && Proc.state($0) != "Z" }, "restored tree still alive\n\(run.diagnostics())\n\(daemon.logText)")
        #expect(Proc.read(run.dir + "/result") == nil, "the workload wrote a result without its pages")
        let st = await Proc.wait(daemon.pid, timeout: 10)
        #expect(st != nil && st?.status != 0, "lazy-pages: \(st.map(\.description) ?? "still running")")
    }

    /// CRIU's dump --lazy-pages keeps its tree frozen until every page is served, so its
    /// restore cannot take the same pids on this host: only our dump feeds CRIU's daemon.
    @Test("CRIU 4.2's lazy-pages --page-server and restore --lazy-pages take the pages our dump --lazy-pages serves, of one process and of a tree",
          .enabled(if: ReferenceCriu.available, ReferenceCriu.reason), arguments: ["lazy", "lazy-tree"])
    func criuDaemon(_ name: String) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
        let run = try WorkloadRun(Workload(name: name))
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let dump = try await LazyDumpProcess(run, leaveRunning: false)
        defer { Proc.sigkill(dump.pid) }
        let left = await run.reapOriginal()
        try #require(left.isEmpty, "original processes \(left) still exist\n\(run.diagnostics())")
        let daemon = try Proc.spawn([try ReferenceCriu.binary.get(), "lazy-pages", "--page-server", "--address", "127.0.0.1", "--port", "\(dump.port)",
                                     "-D", run.images, "-o", "criu-lazy-pages.log", "-v4"], stdout: run.base + "/criu-lazy-pages.out")
        defer { Proc.sigkill(daemon) }
        let log = run.images + "/criu-lazy-pages.log"
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: run.images + "/lazy-pages.socket") && Date() < deadline { await sleep(0.01) }
        let r = try await ReferenceCriu.run(["restore", "-D", run.images, "-d", "--pidfile", run.pidfile, "--lazy-pages", "-o", run.restoreLog, "-v4"],
                                            log: run.base + "/criu-restore.out")
        try #require(r.status == 0, "CRIU's lazy restore of our images failed\n\(r)\n\(run.diagnostics())\n\(Proc.read(log)?.suffix(2000) ?? "")")
        await run.expectPass("lazy, our dump --lazy-pages → CRIU's lazy-pages and restore")
        let st = await Proc.wait(daemon, timeout: 20)
        #expect(st?.status == 0, "CRIU's lazy-pages: \(st.map(\.description) ?? "still running")\n\(Proc.read(log)?.suffix(2000) ?? "")")
        let ds = await Proc.wait(dump.pid, timeout: 10)
        #expect(ds?.status == 0, "our dump: \(ds.map(\.description) ?? "still serving")\n\(Proc.read(run.dumpLog)?.suffix(2000) ?? "")")
    }
}
