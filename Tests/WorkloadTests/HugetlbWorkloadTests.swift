// hugetlb memory (issue 11): private and shared MAP_HUGETLB areas and hugetlb memfds,
// mapped or not, compared after a real dump and restore in both modes. Each test adds the
// 2 MiB pages it needs to the kernel's pool (nr_hugepages) and takes them back after.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let hugetlb = Workload(name: "hugetlb")
    static let hugetlbCriu = Workload(name: "hugetlb", args: ["criu"])
    static let hugetlbGigantic = Workload(name: "hugetlb", args: ["1g"])
    static let hugetlbPrivateMemfd = Workload(name: "hugetlb", args: ["private-memfd"])
}

/// The kernel's huge page pools, grown by what a test needs for as long as it runs. Tests
/// run in parallel: each adds to and takes from a pool as it stands, under one lock.
enum HugePagePool {
    private static let lock = NSLock()
    /// Pages the hugetlb workload uses (10; its restore starts once the original is gone),
    /// and two to spare.
    static let workloadPages = 12

    private static func path(_ kB: Int) -> String { "/sys/kernel/mm/hugepages/hugepages-\(kB)kB/nr_hugepages" }
    private static func current(_ kB: Int) -> Int { Int((Proc.read(path(kB)) ?? "0").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 }
    private static func set(_ n: Int, _ kB: Int) { try? "\(n)\n".write(toFile: path(kB), atomically: false, encoding: .utf8) }

    /// Whether the kernel finds `pages` more pages of `kB` now (a 1 GiB page needs 1 GiB of
    /// contiguous free memory, which a fragmented machine may not have).
    static func available(_ pages: Int, kB: Int) -> Bool {
        lock.withLock {
            let before = current(kB)
            set(before + pages, kB)
            defer { set(before, kB) }
            return current(kB) >= before + pages
        }
    }

    static func with<T>(_ pages: Int, kB: Int = 2048, _ body: () async throws -> T) async throws -> T {
        let (want, got) = lock.withLock {
            let want = current(kB) + pages
            set(want, kB)
            return (want, current(kB))
        }
        defer { lock.withLock { set(max(current(kB) - pages, 0), kB) } }
        try #require(got >= want, "the kernel gave \(got) pages of \(kB) kB, \(want) wanted")
        return try await body()
    }
}

extension CheckpointRestoreTests {
    @Suite("hugetlb memory")
    struct Hugetlb {
        @Test("private and shared MAP_HUGETLB areas, hugetlb memfds mapped, mapped only and unmapped: contents, page size, perms, sharing", arguments: Mode.allCases)
        func hugetlb(_ mode: Mode) async throws {
            try await HugePagePool.with(HugePagePool.workloadPages) { try await checkpointRestore(.hugetlb, mode) }
        }

        /// One mode after the other: two 1 GiB pages at once are more than a busy machine has.
        @Test("a hugetlb memfd of one 1 GiB page: page size, contents", .serialized,
              .enabled(if: HugePagePool.available(1, kB: 1 << 20), "the kernel finds no free 1 GiB page"), arguments: Mode.allCases)
        func gigantic(_ mode: Mode) async throws {
            try await HugePagePool.with(1, kB: 1 << 20) { try await checkpointRestore(.hugetlbGigantic, mode) }
        }

        /// hugetlb areas are not write-tracked (as CRIU leaves them out of a pre-dump): the
        /// dump on a pre-dump holds all their pages, none left to the parent.
        @Test("pre-dump then dump on it (--track-mem): hugetlb areas come back whole", arguments: Mode.allCases)
        func preDump(_ mode: Mode) async throws {
            try await HugePagePool.with(HugePagePool.workloadPages) {
                let run = try WorkloadRun(.hugetlb)
                defer { run.cleanup() }
                try run.start()
                try await run.waitReady()
                let p = await run.preDump(into: run.base + "/pd")
                try #require(p.status == 0, "pre-dump failed\n\(p)\n\(run.diagnostics())")
                var args = ["dump", "-t", "\(run.rootPid)", "-D", run.images, "-o", run.dumpLog, "-v4", "--track-mem", "--prev-images-dir", "../pd"]
                if mode == .leaveRunning { args.append("--leave-running") }
                let d = await CLI.run(args, outputDir: run.base)
                try #require(d.status == 0, "dump failed\n\(d)\n\(run.diagnostics())")
                // 8 MiB of shared objects (always whole) and 6 MiB written in private areas.
                #expect(pagesBytes(run.images) >= 14 << 20, "the dump holds \(pagesBytes(run.images)) bytes of pages")
                let left = mode == .kill ? await run.reapOriginal() : await run.killOriginal()
                try #require(left.isEmpty, "original processes \(left) still exist\n\(run.diagnostics())")
                let r = await run.restore()
                try #require(r.status == 0, "restore failed\n\(run.diagnostics())")
                await run.expectPass("hugetlb after pre-dump + \(mode.testDescription) dump + restore")
            }
        }

        @Test("CRIU 4.2 restores our images of hugetlb memory, and we restore CRIU's", arguments: Direction.allCases)
        func criuInterop(_ direction: Direction) async throws {
            try await HugePagePool.with(HugePagePool.workloadPages) { try await crossRestore(.hugetlbCriu, direction) }
        }

        @Test("refused at dump with one line; the workload keeps running",
              arguments: zip([Workload.hugetlbPrivateMemfd], ["private mapping of hugetlb memfd"]))
        func refused(_ w: Workload, _ reason: String) async throws {
            try await HugePagePool.with(2) { try await expectRefusedDump(w, reason) }
        }

        /// A file of a hugetlbfs mounted for the test: its mapping is refused.
        @Test("a mapping of a file on a mounted hugetlbfs is refused with one line; the workload keeps running")
        func mountedFile() async throws {
            var t = Array("/tmp/ocw-hugetlbfs-XXXXXX".utf8CString)
            let dir = t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
            defer { rmdir(dir) }
            try #require(mount("none", dir, "hugetlbfs", 0, nil) == 0, "mount hugetlbfs: \(String(cString: strerror(errno)))")
            defer { umount2(dir, Int32(MNT_DETACH)) }
            let w = Workload(name: "hugetlb", args: ["file", dir + "/mapped"])
            try await HugePagePool.with(2) { try await expectRefusedDump(w, "mapping of hugetlbfs file") }
        }
    }
}
