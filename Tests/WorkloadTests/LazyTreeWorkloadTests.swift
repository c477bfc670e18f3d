// Lazy pages for a tree (issue 14, item 3): a parent and two children, each with memory
// of its own written after the fork (lazy) beside memory still shared copy-on-write from
// before it (filled before the restore's fork, so written to the images by the dump).
// Served from the images (lazy-pages -D) and from a dump --lazy-pages (every task by its
// pid); the source killed mid-transfer is in RemoteLazyWorkloadTests.sourceKilled.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let lazyTree = Workload(name: "lazy-tree", args: ["missing"], restoreArgs: ["--lazy-pages"])
}

@Suite("lazy pages of a tree", .serialized)
struct LazyTreeWorkloadTests {
    /// Each process's own area: (3 + generation) MiB, the only areas left to the daemon.
    static let ownPages = [3, 4, 5].map { $0 << 8 }

    /// The daemon ended 0 having followed the three grandchildren's forks and, per process,
    /// held back exactly its own area: the areas shared copy-on-write were filled eagerly.
    private func expectServedTree(_ run: WorkloadRun, _ daemon: LazyPagesDaemon) async {
        let st = await Proc.wait(daemon.pid, timeout: 20)
        if st == nil { Proc.sigkill(daemon.pid); _ = await Proc.wait(daemon.pid, timeout: 10) }
        #expect(st?.status == 0, "lazy-pages: \(st.map(\.description) ?? "still running")\n\(daemon.logText)")
        let log = daemon.logText
        #expect(log.contains("3 forks followed") && !log.contains(" 0 pages on fault"), "\(log.suffix(2000))")
        for (pid, pages) in zip(run.pids, Self.ownPages) {
            #expect(log.contains("pid \(pid): \(pages) pages pending"), "pid \(pid) should wait for its \(pages) pages only\n\(log.suffix(2000))")
        }
    }

    @Test("lazy-pages -D and restore --lazy-pages of a tree: own memory on fault in every process, copy-on-write sharing kept, counters", arguments: Mode.allCases)
    func local(_ mode: Mode) async throws {
        let (run, daemon) = try await LazyRestoreWorkloadTests.lazyRestore(mode, .lazyTree, backgroundAfter: 2)
        defer { run.cleanup() }
        await run.expectPass("lazy-tree after \(mode.testDescription) dump + lazy restore")
        await expectServedTree(run, daemon)
    }

    @Test("dump --lazy-pages of a tree serves every process by its pid; shared copy-on-write areas go to the images", arguments: Mode.allCases)
    func remote(_ mode: Mode) async throws {
        let (run, dump, daemon) = try await RemoteLazyWorkloadTests.remoteLazyRestore(mode, .lazyTree, backgroundAfter: 2)
        defer { run.cleanup(); Proc.sigkill(dump.pid) }
        await run.expectPass("lazy-tree after \(mode.testDescription) dump --lazy-pages + remote lazy restore")
        await expectServedTree(run, daemon)
        let ds = await Proc.wait(dump.pid, timeout: 10)
        #expect(ds?.status == 0, "dump: \(ds.map(\.description) ?? "still serving")\n\(Proc.read(run.dumpLog)?.suffix(2000) ?? "")")
        // Held: the three own areas, every page asked for (the workload reads them all).
        let held = Self.ownPages.reduce(0, +)
        let dumpLog = Proc.read(run.dumpLog) ?? ""
        #expect(dumpLog.contains("lazy pages: \(held) of \(held) pages served"), "\(dumpLog.suffix(2000))")
    }
}
