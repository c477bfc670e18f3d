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
    static let hugetlbPrivateMemfd = Workload(name: "hugetlb", args: ["private-memfd"])
}

/// The 2 MiB page pool, grown by what a test needs for as long as it runs. Tests run in
/// parallel: each adds to and takes from the pool as it stands, under one lock.
enum HugePagePool {
    private static let lock = NSLock()
    private static let path = "/proc/sys/vm/nr_hugepages"
    /// Pages the hugetlb workload uses (10; its restore starts once the original is gone),
    /// and two to spare.
    static let workloadPages = 12

    private static func current() -> Int { Int((Proc.read(path) ?? "0").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 }
    private static func set(_ n: Int) { try? "\(n)\n".write(toFile: path, atomically: false, encoding: .utf8) }

    static func with<T>(_ pages: Int, _ body: () async throws -> T) async throws -> T {
        let (want, got) = lock.withLock {
            let want = current() + pages
            set(want)
            return (want, current())
        }
        defer { lock.withLock { set(max(current() - pages, 0)) } }
        try #require(got >= want, "the kernel gave \(got) 2 MiB pages, \(want) wanted")
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

        @Test("CRIU 4.2 restores our images of hugetlb memory, and we restore CRIU's", arguments: Direction.allCases)
        func criuInterop(_ direction: Direction) async throws {
            try await HugePagePool.with(HugePagePool.workloadPages) { try await crossRestore(.hugetlbCriu, direction) }
        }

        @Test("refused at dump with one line; the workload keeps running",
              arguments: zip([Workload.hugetlbPrivateMemfd], ["private mapping of hugetlb memfd"]))
        func refused(_ w: Workload, _ reason: String) async throws {
            try await HugePagePool.with(2) { try await expectRefusedDump(w, reason) }
        }
    }
}
