import Foundation
import LinuxKernel
import Images
import ProcFS

public struct MemoryStats {
    public var pagesScanned: UInt64 = 0
    public var pagesSkippedZero: UInt64 = 0
    public var pagesWritten: UInt64 = 0
    /// Present pages left in the parent images (unchanged since an earlier pre-dump).
    public var pagesInParent: UInt64 = 0
}

/// Dumps the address space of seized processes: the VMA list for mm-PID.img and the
/// pages that carry data (present or swapped, never the shared zero page) into
/// pagemap-PID.img + pages-N.img; shared anonymous memory once per object.
final class MemoryDump {
    let transfer: PageTransfer
    let files: FileTableDump
    var stats = MemoryStats()
    private var dumpedShmem: Set<UInt64> = []
    /// Pre-dump: the processes' pages wait here and go once the tree runs again (sendPlanned).
    var planned: [(pagemap: ImageName, runs: [PageRun], copy: PageCopy)]?
    /// dump --lazy-pages: the lazy areas' pages go to it, flagged PE_LAZY in the pagemap.
    var lazyPages: LazyPagesDump?
    static let pageSize: UInt64 = 4096

    init(transfer: PageTransfer, files: FileTableDump) {
        self.transfer = transfer
        self.files = files
    }

    /// The memory of `pid`, written as pagemap-`name`.img (its pid in the tree's namespace);
    /// `selection` says which present pages are left in the parent images. The pages are
    /// chosen and copied from `areas` (bounds and paths: maps is enough); the vma entries
    /// come from `described` (smaps, read meanwhile on a thread: the kernel walks every
    /// resident page for it), or from `areas` when they are smaps's already.
    func dump(pid: Int32, name: Int32, areas: [MemoryArea], selection: PageSelection = .all, described: BackgroundWork<[MemoryArea]>? = nil) throws -> [VmaEntry] {
        let pagemap = open("/proc/\(pid)/pagemap", O_RDONLY | O_CLOEXEC)
        if pagemap < 0 { throw CheckpointError.errno("open /proc/\(pid)/pagemap") }
        defer { close(pagemap) }
        var runs: [PageRun] = []
        var forced: [PageRun] = []  // runs in unreadable areas: copied through /proc/PID/mem
        var guards: [VmaEntry] = []
        var lazy: [PageRun] = []
        // Which areas are lazy depends on their flags: a lazy dump waits for them first.
        let flaggedFirst = lazyPages == nil ? nil : try vmaEntries(pid: pid, of: areas, described: described)
        let lazyAreas = Set((flaggedFirst ?? []).filter(LazyAreas.isLazy).map(\.start))
        for area in areas {
            let status = Self.status(of: area)
            // SysV segments travel with their IPC namespace (or stay on the host): no pages here.
            // The vdso's pages are saved, as CRIU saves them: its restore reads the dumped
            // vdso's symbols from them; ours maps the running kernel's vdso instead.
            if status == 0 || status & (VmaStatus.vvar | VmaStatus.vsyscall | VmaStatus.sysvIPC | VmaStatus.fileShared) != 0 { continue }
            if status & VmaStatus.anonShared != 0 {
                try dumpShmem(pid: pid, area: area, shmid: area.inode)
                continue
            }
            // The whole vdso, present or not, as CRIU dumps it (its restore may build a
            // proxy from it; ours skips these pages), and the whole of an AIO ring.
            if status & (VmaStatus.vdso | VmaStatus.aioRing) != 0 {
                runs.append(PageRun(address: area.start, length: Int(area.size)))
                continue
            }
            let (areaRuns, guarded) = try pageRuns(pagemap: pagemap, pid: pid, area: area, anonymousOnly: status & VmaStatus.filePrivate != 0, selection: selection)
            if lazyAreas.contains(area.start) && area.readable {
                lazy += areaRuns
            } else if area.readable { runs += areaRuns } else { forced += areaRuns }
            guards += guarded.map { Self.guardEntry($0.0, $0.0 + UInt64($0.1)) }
        }
        let memory = try RemoteMemory(pid: pid)
        // Unreadable areas: /proc/PID/mem reads them the way a debugger does.
        let forcedRanges = AddressRanges(forced.map { ($0.address, $0.address + UInt64($0.length)) })
        func isForced(_ addr: UInt64) -> Bool { forcedRanges.contains(addr) }
        let copy: PageCopy = { pieces, base in
            var offset = 0, index = 0
            // Consecutive pieces of one kind go in one call.
            while index < pieces.count {
                let kind = isForced(pieces[index].0)
                var end = index
                while end < pieces.count && isForced(pieces[end].0) == kind { end += 1 }
                let group = Array(pieces[index..<end])
                if kind {
                    var at = offset
                    for (addr, len) in group {
                        let bytes = try memory.read(addr, count: len)
                        bytes.withUnsafeBytes { (base + at).copyMemory(from: $0.baseAddress!, byteCount: len) }
                        at += len
                    }
                } else {
                    try memory.copyOut(group, into: base + offset)
                }
                offset += group.reduce(0) { $0 + $1.1 }
                index = end
            }
        }
        if planned != nil {
            planned!.append((.pagemap(name), runs + forced, Self.fromRunning(copy, memory: memory)))
        } else if let lazyPages {
            // Which of `lazy` stay lazy depends on the rest of the tree (sendLazyTree).
            lazyPages.wait(vpid: name, runs: runs + forced, lazyCandidates: lazy, memory: memory, copy: copy)
        } else {
            do { try writePages(.pagemap(name), runs: runs + forced, copy: copy) } catch {
                // An area its flags refuse (device memory) fails the copy first: the refusal says why.
                _ = try vmaEntries(pid: pid, of: areas, described: described)
                throw error
            }
        }
        // Guard ranges after every area, as CRIU lists them.
        return try (flaggedFirst ?? vmaEntries(pid: pid, of: areas, described: described)) + guards
    }

    /// The vma entries of `areas`, from `described` when given (smaps of the same frozen
    /// process: the same areas, with their flags).
    private func vmaEntries(pid: Int32, of areas: [MemoryArea], described: BackgroundWork<[MemoryArea]>?) throws -> [VmaEntry] {
        let flagged = try described?.wait() ?? areas
        guard flagged.map(\.start) == areas.map(\.start), flagged.map(\.end) == areas.map(\.end) else {
            throw CheckpointError(.unsupported, "pid \(pid): its mappings changed while it was frozen (maps and smaps differ): is its memory shared with a process outside the tree?")
        }
        var vmas: [VmaEntry] = []
        for area in flagged {
            let vma = try entry(for: area, pid: pid)
            // One vvar area, as CRIU sees [vvar] and [vvar_vclock] side by side.
            if vma.status & VmaStatus.vvar != 0, let last = vmas.last, last.status & VmaStatus.vvar != 0, last.end == vma.start {
                vmas[vmas.count - 1].end = vma.end
                continue
            }
            vmas.append(vma)
        }
        return vmas
    }

    /// Shared anonymous memory: read once, from the object itself, through map_files.
    /// A mapping grown past its object's end (mremap) faults there; the images keep no
    /// object size, and a restore would make the object as large as the mapping.
    private func dumpShmem(pid: Int32, area: MemoryArea, shmid: UInt64) throws {
        let path = "/proc/\(pid)/map_files/\(String(area.start, radix: 16))-\(String(area.end, radix: 16))"
        var st = stat()
        if stat(path, &st) != 0 { throw CheckpointError.errno("stat \(path)") }
        if UInt64(st.st_size) < area.offset + area.size {
            throw CheckpointError(.unsupported, "pid \(pid): shared anonymous mapping \(area.start.hex)-\(area.end.hex) reaches past its object's end (\(st.st_size) bytes): not supported")
        }
        try dumpShmem(path: path, shmid: shmid)
    }

    /// A shmem object (a shared mapping's, a memfd's) read through `path`, once per shmid.
    func dumpShmem(path: String, shmid: UInt64) throws {
        guard dumpedShmem.insert(shmid).inserted else { return }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open \(path)") }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        let size = UInt64(st.st_size)
        // Runs of data, as offsets in the object (SEEK_DATA/SEEK_HOLE).
        var runs: [(UInt64, Int)] = []
        var pos: off_t = 0
        if let huge = HugePages.pageSize(st) {
            runs = try HugePages.dataRuns(fd: fd, size: size, pageSize: huge)
            pos = off_t(size)
        }
        while UInt64(pos) < size {
            let data = lseek(fd, pos, SeekWhence.data)
            if data < 0 { break }
            var hole = lseek(fd, data, SeekWhence.hole)
            if hole < 0 { hole = off_t(size) }
            // Whole pages: a file's last page may end before the page does (a memfd).
            let end = (Int(hole) + Int(Self.pageSize) - 1) & ~(Int(Self.pageSize) - 1)
            runs.append((UInt64(data), end - Int(data)))
            pos = off_t(end)
        }
        try writePages(.pagemapShmem(shmid), runs: runs.map { PageRun(address: $0.0, length: $0.1) }) { pieces, base in
            var offset = 0
            for (start, len) in pieces {
                let n = pread(fd, base + offset, len, off_t(start))
                if n < 0 || (n != len && start + UInt64(n) != size) { throw CheckpointError.errno("read shared memory \(path)") }
                if n < len { (base + offset + n).initializeMemory(as: UInt8.self, repeating: 0, count: len - n) }
                offset += len
            }
        }
    }

    /// The data runs of one pagemap, in address order, handed to the transfer.
    func writePages(_ pagemap: ImageName, runs: [PageRun], copy: PageCopy) throws {
        let ordered = runs.sorted { $0.address < $1.address }
        let bytes = try transfer.send(pagemap, runs: ordered, copy: copy)
        stats.pagesWritten += UInt64(bytes) / Self.pageSize
        stats.pagesInParent += ordered.reduce(0) { $0 + ($1.inParent ? UInt64($1.length) : 0) } / Self.pageSize
    }
}
