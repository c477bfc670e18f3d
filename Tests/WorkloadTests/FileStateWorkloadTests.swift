// Files restored as they were: pipes with every kind of shared end, fd owners, deleted
// files with their holes, and the refusals of what cannot be carried.

import Foundation
import SystemTestSupport
import Testing

extension Workload {
    static let pipeEnds = Workload(name: "pipe-ends")
    static let fown = Workload(name: "fown")
    static let ghost = Workload(name: "ghost", dumpArgs: ["--ghost-limit", "2G"])
    static let ghostLinked = Workload(name: "ghost", args: ["linked"], dumpArgs: ["--ghost-limit", "2G", "--link-remap"])
    static let deletedDirs = Workload(name: "deleted-dirs")
    static let ptyOwner = Workload(name: "pty-owner")
    static let memfdSeals = Workload(name: "memfd-seals")
    static let pidfdDead = Workload(name: "pidfd-dead")
    static let lease = Workload(name: "lease", dumpArgs: ["--file-locks"], restoreArgs: ["--file-locks"])
    static let leaseBreaking = Workload(name: "lease", args: ["breaking"], dumpArgs: ["--file-locks"])
    static let nsfd = Workload(name: "nsfd")
    static let deletedMap = Workload(name: "deleted-map")
    static let ghostOverLimit = Workload(name: "ghost")
    static let ghostLinkedWithoutRemap = Workload(name: "ghost", args: ["linked"], dumpArgs: ["--ghost-limit", "2G"])
}

extension CheckpointRestoreTests {
    @Suite("file state")
    struct FileState {
        @Test("pipes: flags per description, capacity, bytes in order across shared and dup'ed ends", arguments: Mode.allCases)
        func pipeEnds(_ mode: Mode) async throws { try await checkpointRestore(.pipeEnds, mode) }

        @Test("fd owners: F_SETOWN_EX pid and process group, F_SETSIG, owner uids, O_ASYNC signals", arguments: Mode.allCases)
        func fown(_ mode: Mode) async throws { try await checkpointRestore(.fown, mode) }

        @Test("deleted files: 1.5 GiB sparse with its holes, mode, owner, mtime, two descriptions one inode; a new file at the old name", arguments: Mode.allCases)
        func ghost(_ mode: Mode) async throws { try await checkpointRestore(.ghost, mode) }

        @Test("a deleted file still linked elsewhere stays one inode with its other name (--link-remap)", arguments: Mode.allCases)
        func ghostLinked(_ mode: Mode) async throws { try await checkpointRestore(.ghostLinked, mode) }

        @Test("removed cwd and directory fd, unlinked FIFO with queued bytes, deleted device node", arguments: Mode.allCases)
        func deletedDirs(_ mode: Mode) async throws { try await checkpointRestore(.deletedDirs, mode) }

        @Test("pty slave keeps its owner, group and mode", arguments: Mode.allCases)
        func ptyOwner(_ mode: Mode) async throws { try await checkpointRestore(.ptyOwner, mode) }

        @Test("memfds: every creation flag and seal set, mode and owner", arguments: Mode.allCases)
        func memfdSeals(_ mode: Mode) async throws { try await checkpointRestore(.memfdSeals, mode) }

        @Test("pidfds of a reaped child; O_PATH fds of a symlink, its target and a directory", arguments: Mode.allCases)
        func pidfdDead(_ mode: Mode) async throws { try await checkpointRestore(.pidfdDead, mode) }

        @Test("read and write leases come back without a break signal; a later open breaks the write lease", arguments: Mode.allCases)
        func lease(_ mode: Mode) async throws { try await checkpointRestore(.lease, mode) }

        @Test("fds on /proc/self/ns files name the same namespaces after restore", arguments: Mode.allCases)
        func nsfd(_ mode: Mode) async throws { try await checkpointRestore(.nsfd, mode) }

        @Test("shared and private mappings of deleted files: contents, write-through, still deleted", arguments: Mode.allCases)
        func deletedMap(_ mode: Mode) async throws { try await checkpointRestore(.deletedMap, mode) }

        /// CRIU 4.2's own restore of ghost and deleted-dirs differs from the dump (a deleted
        /// file whose name is taken shows as NAME.cr_link, a removed directory's fd loses
        /// O_DIRECTORY), so those go one way only.
        @Test("CRIU 4.2 restores our images of them, and we restore its",
              arguments: [(Workload.pipeEnds, Direction.oursToCriu), (.fown, .oursToCriu), (.deletedMap, .oursToCriu),
                          (.ghost, .criuToOurs), (.deletedDirs, .criuToOurs)])
        func interop(_ w: Workload, _ d: Direction) async throws {
            let run = try WorkloadRun(w)
            defer { run.cleanup() }
            try run.start()
            try await run.waitReady()
            try await crossCheckpoint(run, d, options: w.dumpArgs)
            await run.expectPass("\(w.testDescription), \(d.testDescription)")
        }

        @Test("refused at dump with one line; the workload keeps running",
              arguments: zip([Workload.ghostOverLimit, .ghostLinkedWithoutRemap, .leaseBreaking],
                             ["over the ghost file limit of 1048576 (--ghost-limit)", "dump with --link-remap",
                              "a lease being broken (BREAKING) cannot be restored without signalling its holder again"]))
        func refused(_ w: Workload, _ reason: String) async throws {
            try await expectRefusedDump(w, reason)
        }
    }
}
