// Memory state beyond page contents: sharing between a parent and its forked children,
// madvise and THP state, areas the dump cannot read directly. Each compared after a real
// dump and restore in both modes.

import Foundation
import Images
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let cow = Workload(name: "cow")
    static let madvise = Workload(name: "madvise")
    static let unreadable = Workload(name: "unreadable")
    static let grownShared = Workload(name: "unreadable", args: ["grown-shared"])
    static let aio = Workload(name: "aio")
    static let deletedMapping = Workload(name: "deleted-mapping")
    static let vdsoMoved = Workload(name: "vdso", args: ["moved"])
    static let vdsoUnmapped = Workload(name: "vdso", args: ["unmapped"])
    static let vdsoCalls = Workload(name: "vdso", args: ["calls"])
}

extension CheckpointRestoreTests {
    @Suite("memory state")
    struct MemoryState {
        @Test("32 MiB shared copy-on-write by parent, child and grandchild stays shared, COW holds", arguments: Mode.allCases)
        func cow(_ mode: Mode) async throws { try await checkpointRestore(.cow, mode) }

        @Test("madvise state, mlock, THP disabled, moved and grown areas, a file changed after mapping", arguments: Mode.allCases)
        func madvise(_ mode: Mode) async throws { try await checkpointRestore(.madvise, mode) }

        @Test("PROT_NONE data, guard pages, a shared mapping past its file's end, a closed odd-sized memfd", arguments: Mode.allCases)
        func unreadable(_ mode: Mode) async throws { try await checkpointRestore(.unreadable, mode) }

        @Test("mappings of deleted files and of a closed memfd: same names, contents, sharing", arguments: Mode.allCases)
        func deletedMapping(_ mode: Mode) async throws { try await checkpointRestore(.deletedMapping, mode) }

        @Test("io_setup context: same id, unread completed events, new requests after restore", arguments: Mode.allCases)
        func aio(_ mode: Mode) async throws { try await checkpointRestore(.aio, mode) }

        @Test("a vdso and vvar moved by the program come back where it put them", arguments: Mode.allCases)
        func vdsoMoved(_ mode: Mode) async throws { try await checkpointRestore(.vdsoMoved, mode) }

        @Test("refused at dump with one line; the workload keeps running",
              arguments: zip([Workload.grownShared], ["reaches past its object's end"]))
        func refused(_ w: Workload, _ reason: String) async throws {
            try await expectRefusedDump(w, reason)
        }

        /// Another kernel is played by the images: the dumped vvar is made a page shorter,
        /// so the running vdso cannot stand where the dumped one was and a proxy must.
        @Test("a vdso of another kernel: the dumped vdso comes back as a proxy into the running one", arguments: Mode.allCases)
        func vdsoProxy(_ mode: Mode) async throws {
            try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
            let run = try WorkloadRun(.vdsoCalls)
            defer { run.cleanup() }
            try run.start()
            try await run.waitReady()
            let d = await run.dump(leaveRunning: mode == .leaveRunning)
            try #require(d.status == 0, "dump failed\n\(run.diagnostics())")
            let left = mode == .kill ? await run.reapOriginal() : await run.killOriginal()
            try #require(left.isEmpty, "original processes \(left) still exist")
            let images = ImageDirectory(path: run.images)
            var mm = try images.readOne(.mm(run.rootPid), as: MmEntry.self)
            let vvar = try #require(mm.vmas.firstIndex { $0.status & VmaStatus.vvar != 0 }, "no vvar in the dumped areas")
            mm.vmas[vvar].start += 4096
            try images.write(.mm(run.rootPid), [mm])
            let r = await run.restore()
            try #require(r.status == 0, "restore failed\n\(run.diagnostics())")
            await run.expectPass("glibc's clock_gettime through a vdso proxy after \(mode.testDescription) dump + restore")
        }

        /// CRIU's own images of the same state, and ours read by CRIU. CRIU's images of a
        /// deleted file both open and mapped name one ghost from two entries, which our
        /// restore still makes into two files: that direction is left out.
        @Test("CRIU 4.2 restores our images of this state, and we restore CRIU's",
              arguments: [(Workload.cow, Direction.oursToCriu), (.cow, .criuToOurs), (.madvise, .oursToCriu), (.madvise, .criuToOurs),
                          (.aio, .oursToCriu), (.aio, .criuToOurs), (.unreadable, .oursToCriu), (.unreadable, .criuToOurs),
                          (.deletedMapping, .oursToCriu)])
        func criuInterop(_ w: Workload, _ direction: Direction) async throws { try await crossRestore(w, direction) }

        @Test("a vdso and vvar unmapped by the program stay unmapped", arguments: Mode.allCases)
        func vdsoUnmapped(_ mode: Mode) async throws { try await checkpointRestore(.vdsoUnmapped, mode) }
    }
}
