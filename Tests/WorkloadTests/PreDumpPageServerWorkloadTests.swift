// Pre-dump through a page server (the pre-copy rounds of `migrate`, issue 14 item 4):
// `pre-dump --page-server` sends its pages to page-server, which writes them into the
// directory it shares with the pre-dump (as CRIU's page server is meant to be used); the
// dump --track-mem on it leaves the unwritten pages there, and the restore reads them back
// through the parent link. The workload checks its memory and counter itself.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("pre-dump through a page server", .serialized)
struct PreDumpPageServerWorkloadTests {
    @Test("pre-dump to a page server, dump on it, restore through the chain", arguments: Mode.allCases)
    func chain(_ mode: Mode) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
        let run = try WorkloadRun(.pageServer)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let pd = run.base + "/pd"
        let server = try await PageServerProcess.start(.ours, images: pd, base: run.base)
        defer { server.stop() }
        let p = await CLI.run(["pre-dump", "-t", "\(run.rootPid)", "-D", pd, "-o", run.base + "/pre-dump.log", "-v4", "--track-mem",
                               "--page-server", "--address", "127.0.0.1", "--port", "\(server.port)"], outputDir: run.base)
        try #require(p.status == 0, "pre-dump --page-server failed\n\(p)\n\(run.diagnostics())")
        await server.expectFinished()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: pd)) ?? []
        #expect(names.contains("pagemap-\(run.rootPid).img") && names.contains("pages-65537.img") && !names.contains("pages-1.img"),
                "the pre-dump's pages did not come through the server: \(names.sorted())")

        let d = await CLI.run(["dump", "-t", "\(run.rootPid)", "-D", run.images, "-o", run.dumpLog, "-v4", "--track-mem",
                               "--prev-images-dir", "../pd", "--display-stats"] + (mode == .leaveRunning ? ["--leave-running"] : []),
                              outputDir: run.base)
        try #require(d.status == 0, "dump on the pre-dump failed\n\(d)\n\(run.diagnostics())")
        let inParent = d.stdout.split(separator: "\n").first { $0.hasPrefix("pages_skipped_parent:") }
            .flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        #expect(inParent > 1000, "the dump left \(inParent) pages in the page server's images\n\(d.stdout)")
        let left = mode == .kill ? await run.reapOriginal() : await run.killOriginal()
        try #require(left.isEmpty, "original processes \(left) still exist\n\(run.diagnostics())")
        let r = await run.restore()
        try #require(r.status == 0, "restore failed\n\(r)\n\(run.diagnostics())")
        await run.expectPass("pre-dump through a page server, \(mode.testDescription)")
    }
}
