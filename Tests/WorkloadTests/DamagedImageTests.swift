// Damaged but well-formed images of a real dump: every record decodes, yet a field is out
// of range, a count absurd or a reference between images broken. Restore must refuse in
// one line naming the image, before it creates anything, never trap, images untouched.

import LinuxKernel
import Foundation
import Images
import SwiftProtobuf
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One damage: what it does to the images of a dump of `threads` (root `pid`, a second
/// thread `tid`), and the image the refusal must name.
struct ImageDamage: CustomTestStringConvertible, Sendable {
    let name: String
    var workload = Workload.threads
    let damage: @Sendable (ImageDirectory, _ pid: Int32, _ tid: Int32) throws -> ImageName
    var testDescription: String { name }

    static let all: [ImageDamage] = [
        // The memory map (commit 59708a1).
        ImageDamage(name: "vma end below start") { d, pid, _ in
            try d.change(.mm(pid), MmEntry.self) { $0.vmas[0].end = $0.vmas[0].start - 4096 }
        },
        ImageDamage(name: "pages outside the areas") { d, pid, _ in try d.changePagemap(pid) { $0[0].vaddr = 0x1000 } },
        ImageDamage(name: "huge page count") { d, pid, _ in
            try d.changePagemap(pid) { $0[$0.count - 1].nrPages = UInt64.max / 2 }
        },
        ImageDamage(name: "thread listed as a process too") { d, pid, tid in
            let tree = try d.read(.pstree, as: PstreeEntry.self)
            var thread = tree[0]
            (thread.pid, thread.ppid, thread.threads) = (UInt32(tid), UInt32(pid), [UInt32(tid)])
            try d.write(.pstree, tree + [thread])
            return .pstree
        },
        ImageDamage(name: "parent not in the tree") { d, _, _ in
            let tree = try d.read(.pstree, as: PstreeEntry.self)
            var child = tree[0]
            (child.pid, child.ppid, child.threads) = (4_000_000, 1, [4_000_000])
            try d.write(.pstree, tree + [child])
            return .pstree
        },
        // pagemap ↔ pages
        ImageDamage(name: "page runs overlap") { d, pid, _ in try d.changePagemap(pid) { $0.insert($0[0], at: 1) } },
        ImageDamage(name: "pages image shorter than the pagemap") { d, pid, _ in
            var r = try d.reader(.pagemap(pid))
            let id = try r.one(PagemapHead.self).pagesID
            let path = d.file(.pages(id))
            let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber).int64Value
            try #require(truncate(path, off_t(size - 4096)) == 0)
            return .pages(id)
        },
        // Bytes after the one record of an image that has one.
        ImageDamage(name: "second record in core") { d, pid, _ in
            let core = try d.readOne(.core(pid), as: CoreEntry.self)
            try d.write(.core(pid), [core, core])
            return .core(pid)
        },
        ImageDamage(name: "empty record after mm") { d, pid, _ in
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: d.file(.mm(pid))))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(count: 4))
            try handle.close()
            return .mm(pid)
        },
        // pstree ↔ core
        ImageDamage(name: "leader left out of its threads") { d, pid, _ in
            try d.change(.pstree, PstreeEntry.self) { $0.threads.removeAll { $0 == UInt32(pid) } }
        },
        ImageDamage(name: "pgid beyond the pid limit") { d, _, _ in try d.change(.pstree, PstreeEntry.self) { $0.pgid = 0x8000_0000 } },
        ImageDamage(name: "thread core holding a task core") { d, pid, tid in
            try d.write(.core(tid), [try d.readOne(.core(pid), as: CoreEntry.self)])
            return .core(tid)
        },
        ImageDamage(name: "unknown task state") { d, pid, _ in try d.change(.core(pid), CoreEntry.self) { $0.tc.taskState = 99 } },
        ImageDamage(name: "65 sigactions") { d, pid, _ in
            let actions = try d.read(.sigacts(pid), as: SaEntry.self)
            try d.write(.sigacts(pid), actions + Array(repeating: actions[0], count: 65 - actions.count))
            return .sigacts(pid)
        },
        // ids ↔ core ↔ fdinfo
        ImageDamage(name: "ids disagreeing with the core's") { d, pid, _ in
            var ids = try d.readOne(.ids(pid), as: TaskKobjIdsEntry.self)
            _ = try d.change(.core(pid), CoreEntry.self) { ids.filesID += 1; $0.ids = ids }
            return .ids(pid)
        },
        // fdinfo ↔ files
        ImageDamage(name: "fd naming a file files.img lacks") { d, pid, _ in try d.change(.fdinfo(pid), FdinfoEntry.self) { $0.id = 999_999 } },
        ImageDamage(name: "negative fd") { d, pid, _ in try d.change(.fdinfo(pid), FdinfoEntry.self) { $0.fd = UInt32(bitPattern: -1) } },
        ImageDamage(name: "fd twice") { d, pid, _ in
            let fds = try d.read(.fdinfo(pid), as: FdinfoEntry.self)
            var again = fds[0]
            again.id = fds[1].id
            try d.write(.fdinfo(pid), fds + [again])
            return .fdinfo(pid)
        },
        ImageDamage(name: "file id twice") { d, _, _ in
            let files = try d.read(.files, as: FileEntry.self)
            try d.write(.files, files + [files[0]])
            return .files
        },
        ImageDamage(name: "pipe flags beyond an int", workload: .pipes) { d, _, _ in
            var files = try d.read(.files, as: FileEntry.self)
            let i = try #require(files.firstIndex { $0.type == .pipe })
            files[i].pipe.flags = 0x8000_0001
            try d.write(.files, files)
            return .files
        },
        ImageDamage(name: "file type without its entry") { d, _, _ in
            var files = try d.read(.files, as: FileEntry.self)
            let i = try #require(files.firstIndex { $0.type == .reg })
            files[i].type = .pipe
            try d.write(.files, files)
            return .files
        },
        // mm, fs ↔ files
        ImageDamage(name: "mapping of a file files.img lacks") { d, pid, _ in
            try d.change(.mm(pid), MmEntry.self) { mm in
                let i = mm.vmas.firstIndex { $0.status & VmaStatus.filePrivate != 0 }!
                mm.vmas[i].shmid = 999_999
            }
        },
        ImageDamage(name: "file offset of a mapping overflows") { d, pid, _ in
            try d.change(.mm(pid), MmEntry.self) { mm in
                let i = mm.vmas.firstIndex { $0.status & VmaStatus.filePrivate != 0 }!
                mm.vmas[i].pgoff = UInt64.max & ~4095
            }
        },
        ImageDamage(name: "exe file files.img lacks") { d, pid, _ in try d.change(.mm(pid), MmEntry.self) { $0.exeFileID = 999_999 } },
        ImageDamage(name: "cwd files.img lacks") { d, pid, _ in try d.change(.fs(pid), FsEntry.self) { $0.cwdID = 999_999 } },
    ]
}

extension ImageDirectory {
    /// Rewrites an image after `edit` changed its first record; returns its name.
    func change<M: SwiftProtobuf.Message>(_ image: ImageName, _ type: M.Type, _ edit: (inout M) throws -> Void) throws -> ImageName {
        var records = try read(image, as: type)
        try edit(&records[0])
        try write(image, records)
        return image
    }

    func changePagemap(_ pid: Int32, _ edit: (inout [PagemapEntry]) -> Void) throws -> ImageName {
        var r = try reader(.pagemap(pid))
        let head = try r.one(PagemapHead.self)
        var entries = try r.all(PagemapEntry.self)
        edit(&entries)
        let w = try writer(.pagemap(pid))
        try w.append(head)
        for e in entries { try w.append(e) }
        try w.close()
        return .pagemap(pid)
    }
}

extension CheckpointRestoreTests {
    @Suite("damaged images")
    struct DamagedImages {
        @Test("damaged but well-formed images: restore names the image in one line, never traps, images untouched",
              arguments: ImageDamage.all)
        func damagedImage(_ damage: ImageDamage) async throws {
            try Failures().requireBinary()
            let run = try WorkloadRun(damage.workload)
            defer { run.cleanup() }
            try await run.dumpKilled()

            let images = ImageDirectory(path: run.images)
            let pid = run.rootPid
            let threads = try images.read(.pstree, as: PstreeEntry.self)[0].threads
            let tid = threads.first { $0 != UInt32(pid) } ?? UInt32(pid)
            let named = try damage.damage(images, pid, Int32(tid)).fileName
            let before = run.imageSnapshot()
            let r = await run.restore()
            Failures().expectOneLineError(r, run)
            #expect(r.stderr.contains(named), "stderr does not name \(named): \(r.stderr)")
            #expect(run.imageSnapshot() == before, "restore changed the image dir")
            let survivors = await Proc.waitVanished(run.pids + [Int32(tid)], timeout: 20)
            #expect(survivors.isEmpty, "processes \(survivors) exist after the failed restore")
        }
    }
}
