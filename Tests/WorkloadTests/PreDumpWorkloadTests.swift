// Iterative pre-dump without soft-dirty (issue 14, item 1): a workload that keeps writing
// goes through pre-dump, pre-dump, dump and restore; its own checks prove every page came
// back from the right image of the chain. A pre-dump that fails or is killed leaves the
// tree running and unprotected.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let preDump = Workload(name: "predump")
}

/// Total bytes of the pages images in `dir`.
func pagesBytes(_ dir: String) -> Int {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    return names.filter { $0.hasPrefix("pages-") }.reduce(0) {
        $0 + (((try? FileManager.default.attributesOfItem(atPath: dir + "/" + $1))?[.size] as? Int) ?? 0)
    }
}

/// VmFlags lines of `pid`'s smaps that carry `uw` (registered for userfaultfd write-protect).
func writeProtectedAreas(_ pid: pid_t) -> Int {
    (Proc.read("/proc/\(pid)/smaps") ?? "").split(separator: "\n")
        .filter { $0.hasPrefix("VmFlags:") && $0.split(separator: " ").contains("uw") }.count
}

extension WorkloadRun {
    func preDump(into dir: String, parent: String? = nil, env: [String: String] = [:]) async -> CLIResult {
        var args = ["pre-dump", "-t", "\(rootPid)", "-D", dir, "-o", base + "/pre-dump.log", "-v4", "--track-mem"]
        if let parent { args += ["--prev-images-dir", parent] }
        return await CLI.run(args, env: env, outputDir: base)
    }

    /// DIR/round1: the workload unmaps one area, maps another and forks; waits for its
    /// answer, the child's pid.
    func round1() async throws -> pid_t {
        _ = FileManager.default.createFile(atPath: dir + "/round1", contents: Data())
        let deadline = Date().addingTimeInterval(10)
        while true {
            if let text = Proc.read(dir + "/round1-done"), let child = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) { return child }
            if Date() > deadline { throw TestFailure("no round1-done\n" + diagnostics()) }
            await sleep(0.01)
        }
    }

    /// The original tree gone, the child forked at round 1 too (init reaps it, slowly).
    func originalGone(_ mode: Mode, child: pid_t) async -> [pid_t] {
        let left = mode == .kill ? await reapOriginal() : await killOriginal()
        Proc.sigkill(child)
        return left + (await Proc.waitVanished([child]))
    }

    /// pre-dump, round 1, pre-dump on it, dump on that (--track-mem): the pages images'
    /// sizes of the first pre-dump and of the dump, and the child forked at round 1.
    func preDumpChain(leaveRunning: Bool) async throws -> (first: Int, last: Int, child: pid_t) {
        let pd1 = base + "/pd1", pd2 = base + "/pd2"
        let p1 = await preDump(into: pd1)
        try #require(p1.status == 0, "first pre-dump failed\n\(p1)\n\(diagnostics())")
        #expect(writeProtectedAreas(rootPid) > 0, "no area is write-tracked after the pre-dump")
        #expect(runningUntraced() == nil, "\(runningUntraced() ?? "")")
        let child = try await round1()
        await sleep(0.05)
        let p2 = await preDump(into: pd2, parent: "../pd1")
        try #require(p2.status == 0, "second pre-dump failed\n\(p2)\n\(diagnostics())")
        await sleep(0.05)
        var args = ["dump", "-t", "\(rootPid)", "-D", images, "-o", dumpLog, "-v4", "--track-mem", "--prev-images-dir", "../pd2"]
        if leaveRunning { args.append("--leave-running") }
        let d = await CLI.run(args, outputDir: base)
        try #require(d.status == 0, "dump failed\n\(d)\n\(diagnostics())")
        return (pagesBytes(pd1), pagesBytes(images), child)
    }
}

@Suite("Iterative pre-dump (memory tracking without soft-dirty)", .serialized)
struct PreDumpWorkloadTests {
    @Test("pre-dump, pre-dump, dump, restore: every page from the right image, counters go on", arguments: Mode.allCases)
    func chain(_ mode: Mode) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
        let run = try WorkloadRun(.preDump)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let sizes = try await run.preDumpChain(leaveRunning: mode == .leaveRunning)
        #expect(sizes.last * 4 < sizes.first, "the dump's pages (\(sizes.last) bytes) are not much fewer than the first pre-dump's (\(sizes.first))")
        var restoreFrom = run.images
        if mode == .leaveRunning {
            // --track-mem on a tree left running: tracking goes on, and a dump builds on this one.
            #expect(writeProtectedAreas(run.rootPid) > 0, "tracking ended with a --leave-running --track-mem dump")
            await sleep(0.05)
            restoreFrom = run.base + "/img2"
            let d2 = await CLI.run(["dump", "-t", "\(run.rootPid)", "-D", restoreFrom, "-o", run.base + "/dump2.log", "-v4",
                                    "--track-mem", "--prev-images-dir", "../img", "--leave-running"], outputDir: run.base)
            try #require(d2.status == 0, "dump on the left-running dump failed\n\(d2)\n\(run.diagnostics())")
            #expect(pagesBytes(restoreFrom) * 4 < sizes.first, "the second dump's pages (\(pagesBytes(restoreFrom)) bytes) are not much fewer")
        }
        let left = await run.originalGone(mode, child: sizes.child)
        try #require(left.isEmpty, "original processes \(left) still exist\n\(run.diagnostics())")
        if mode == .kill {
            // Without its parent the chain is refused in one line, before anything is made.
            let link = run.images + "/parent"
            try #require(rename(link, link + ".away") == 0)
            let refused = await run.restore()
            #expect(refused.status != 0 && refused.stderrLines.count == 1 && refused.stderr.contains("no parent link"), "\(refused)")
            #expect(!Proc.exists(run.rootPid), "the refused restore left pid \(run.rootPid)")
            try #require(rename(link + ".away", link) == 0)
        }
        let r = await CLI.run(["restore", "-D", restoreFrom, "-d", "--pidfile", run.pidfile, "-o", run.restoreLog, "-v4"], outputDir: run.base)
        try #require(r.status == 0, "restore failed\n\(r)\n\(run.diagnostics())")
        await run.expectPass("predump chain, \(mode.testDescription)")
    }

    @Test("a failed pre-dump leaves the tree running, untraced and not write-protected")
    func failed() async throws {
        let run = try WorkloadRun(.preDump)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let p = await run.preDump(into: run.base + "/pd1", env: ["OCICHECKPOINT_FAULT": "pre-dump-tracked"])
        #expect(p.status == 1 && p.stderrLines.count == 1 && p.stderr.contains("pre-dump-tracked"), "\(p)")
        #expect(run.runningUntraced() == nil, "\(run.runningUntraced() ?? "")")
        #expect(writeProtectedAreas(run.rootPid) == 0, "write-tracking left behind by the failed pre-dump")
        await run.expectPass("predump after a failed pre-dump")
    }

    @Test("a pre-dump killed while the tree is frozen and tracked leaves it running and unprotected")
    func killed() async throws {
        let run = try WorkloadRun(.preDump)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let out = run.base + "/pre-dump.out"
        let pid = try Proc.spawn([Paths.binary, "pre-dump", "-t", "\(run.rootPid)", "-D", run.base + "/pd1", "--track-mem"],
                                 extraEnv: ["OCICHECKPOINT_FAULT": "hang:pre-dump-tracked"], stdout: out)
        let deadline = Date().addingTimeInterval(20)
        while !(Proc.read(out) ?? "").contains("hanging at pre-dump-tracked") {
            if Date() > deadline { Proc.sigkill(pid); throw TestFailure("the pre-dump never reached its fault point: \(Proc.read(out) ?? "")") }
            await sleep(0.01)
        }
        // The test could fail: at this point the tree is tracked and stopped.
        #expect(writeProtectedAreas(run.rootPid) > 0, "nothing was write-tracked before the kill")
        #expect(run.runningUntraced() != nil, "the tree runs while the pre-dump holds it")
        Proc.sigkill(pid)
        _ = await Proc.wait(pid, timeout: 10)
        await sleep(0.1)
        #expect(run.runningUntraced() == nil, "\(run.runningUntraced() ?? "")")
        #expect(writeProtectedAreas(run.rootPid) == 0, "write-tracking left behind by the killed pre-dump")
        await run.expectPass("predump after a killed pre-dump")
    }

    @Test("CRIU 4.2 restores our pre-dump, pre-dump, dump chain", .enabled(if: ReferenceCriu.available, ReferenceCriu.reason))
    func criuRestoresChain() async throws {
        let run = try WorkloadRun(.preDump)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let chain = try await run.preDumpChain(leaveRunning: false)
        let left = await run.originalGone(.kill, child: chain.child)
        try #require(left.isEmpty, "original processes \(left) still exist\n\(run.diagnostics())")
        let r = try await ReferenceCriu.run(["restore", "-D", run.images, "-d", "--pidfile", run.pidfile, "-o", run.restoreLog, "-v4"],
                                            log: run.base + "/criu-restore.out")
        try #require(r.status == 0, "CRIU's restore of our chain failed\n\(r)\n\(run.diagnostics())")
        await run.expectPass("predump chain restored by CRIU 4.2")
    }
}
