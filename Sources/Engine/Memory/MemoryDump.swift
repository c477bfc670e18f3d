import Foundation
import LinuxKernel
import Images
import ProcFS

public struct MemoryStats {
    public var pagesScanned: UInt64 = 0
    public var pagesSkippedZero: UInt64 = 0
    public var pagesWritten: UInt64 = 0
}

/// Dumps the address space of seized processes: the VMA list for mm-PID.img and the
/// pages that carry data (present or swapped, never the shared zero page) into
/// pagemap-PID.img + pages-N.img; shared anonymous memory once per object.
final class MemoryDump {
    let images: ImageDirectory
    let files: FileTableDump
    private(set) var stats = MemoryStats()
    private var nextPagesID: UInt32 = 1
    private var dumpedShmem: Set<UInt64> = []
    static let pageSize: UInt64 = 4096

    init(images: ImageDirectory, files: FileTableDump) {
        self.images = images
        self.files = files
    }

    /// The memory of `pid`, written as pagemap-`name`.img (its pid in the tree's namespace).
    func dump(pid: Int32, name: Int32, areas: [MemoryArea]) throws -> [VmaEntry] {
        let pagemap = open("/proc/\(pid)/pagemap", O_RDONLY | O_CLOEXEC)
        if pagemap < 0 { throw CheckpointError.errno("open /proc/\(pid)/pagemap") }
        defer { close(pagemap) }
        var vmas: [VmaEntry] = []
        var runs: [(UInt64, Int)] = []
        var forced: [(UInt64, Int)] = []  // runs in unreadable areas: copied through /proc/PID/mem
        for area in areas {
            var vma = try entry(for: area, pid: pid)
            // One vvar area, as CRIU sees [vvar] and [vvar_vclock] side by side.
            if vma.status & VmaStatus.vvar != 0, let last = vmas.last, last.status & VmaStatus.vvar != 0, last.end == vma.start {
                vmas[vmas.count - 1].end = vma.end
                continue
            }
            vmas.append(vma)
            // SysV segments travel with their IPC namespace (or stay on the host): no pages here.
            // The vdso's pages are saved, as CRIU saves them: its restore reads the dumped
            // vdso's symbols from them; ours maps the running kernel's vdso instead.
            if vma.status & (VmaStatus.vvar | VmaStatus.vsyscall | VmaStatus.sysvIPC) != 0 { continue }
            if vma.status & VmaStatus.anonShared != 0 {
                try dumpShmem(pid: pid, area: area, shmid: vma.shmid)
                continue
            }
            if vma.status & VmaStatus.fileShared != 0 { continue }
            // The whole vdso, present or not, as CRIU dumps it (its restore may build a
            // proxy from it); ours skips these pages.
            if vma.status & VmaStatus.vdso != 0 {
                runs.append((area.start, Int(area.size)))
                continue
            }
            let areaRuns = try pageRuns(pagemap: pagemap, area: area, anonymousOnly: vma.status & VmaStatus.filePrivate != 0)
            if area.readable { runs += areaRuns } else { forced += areaRuns }
            vma.fd = -1
        }
        let memory = try RemoteMemory(pid: pid)
        try writePages(pagemap: .pagemap(name), runs: runs, forced: forced, copyForced: { pieces, base in
            // Unreadable areas: /proc/PID/mem reads them the way a debugger does.
            var offset = 0
            for (addr, len) in pieces {
                let bytes = try memory.read(addr, count: len)
                bytes.withUnsafeBytes { (base + offset).copyMemory(from: $0.baseAddress!, byteCount: len) }
                offset += len
            }
        }) { pieces, base in
            try memory.copyOut(pieces, into: base)
        }
        return vmas
    }

    private func entry(for area: MemoryArea, pid: Int32) throws -> VmaEntry {
        var v = VmaEntry()
        v.start = area.start; v.end = area.end; v.pgoff = area.offset; v.shmid = 0; v.fd = -1; v.madv = 0; v.fdflags = 0
        v.prot = (area.readable ? UInt32(PROT_READ) : 0) | (area.writable ? UInt32(PROT_WRITE) : 0) | (area.executable ? UInt32(PROT_EXEC) : 0)
        v.flags = UInt32(area.shared ? MAP_SHARED : MAP_PRIVATE)
        if area.vmFlags.contains("gd") { v.flags |= UInt32(MAP_GROWSDOWN) }
        // The access a file opened for this mapping needs, as CRIU records it (its restore
        // opens the mapped file with exactly these flags).
        v.fdflags = UInt32(area.shared && area.vmFlags.contains("mw") ? O_RDWR : O_RDONLY)
        switch area.path {
        // Private anonymous areas too, as CRIU marks them.
        case "[vdso]": v.status = VmaStatus.regular | VmaStatus.vdso | VmaStatus.anonPrivate; v.flags |= UInt32(MAP_ANONYMOUS)
        case "[vvar]", "[vvar_vclock]": v.status = VmaStatus.regular | VmaStatus.vvar | VmaStatus.anonPrivate; v.flags |= UInt32(MAP_ANONYMOUS)
        case "[vsyscall]": v.status = VmaStatus.vsyscall | VmaStatus.anonPrivate; v.flags |= UInt32(MAP_ANONYMOUS)
        default:
            if area.vmFlags.contains("io") || area.vmFlags.contains("pf") {
                throw CheckpointError(.unsupported, "pid \(pid): mapping \(area.start.hex)-\(area.end.hex) \(area.path) is device memory (VM_IO/VM_PFNMAP)")
            }
            if area.path.hasPrefix("/SYSV") {
                // A SysV shm attachment: the inode number of its file is the segment's id.
                v.status = VmaStatus.regular | VmaStatus.anonShared | VmaStatus.sysvIPC
                v.flags |= UInt32(MAP_ANONYMOUS)
                v.shmid = area.inode
            } else if area.shared && area.isMemfd {
                v.status = VmaStatus.regular | VmaStatus.fileShared | VmaStatus.memfd
                v.shmid = UInt64(try files.memfdMapping(pid: pid, area: area))
            } else if area.isSharedAnonymous {
                v.status = VmaStatus.regular | VmaStatus.anonShared
                v.flags |= UInt32(MAP_ANONYMOUS)
                v.shmid = area.inode
            } else if area.isFileBacked && !area.isDeletedFile {
                v.status = VmaStatus.regular | (area.shared ? VmaStatus.fileShared : VmaStatus.filePrivate)
                let wantsWrite = area.shared && area.vmFlags.contains("mw")
                v.shmid = UInt64(files.pathEntry(area.path, flags: UInt32(wantsWrite ? O_RDWR : O_RDONLY)))
            } else if area.isFileBacked {
                v.status = VmaStatus.regular | (area.shared ? VmaStatus.fileShared : VmaStatus.filePrivate)
                let wantsWrite = area.shared && area.vmFlags.contains("mw")
                v.shmid = UInt64(try files.deletedMappingEntry(pid: pid, area: area, flags: UInt32(wantsWrite ? O_RDWR : O_RDONLY)))
            } else if area.shared {
                throw CheckpointError(.unsupported, "pid \(pid): shared mapping \(area.start.hex)-\(area.end.hex) \(area.path) is not supported")
            } else {
                v.status = VmaStatus.regular | VmaStatus.anonPrivate
                v.flags |= UInt32(MAP_ANONYMOUS)
                if area.path == "[heap]" { v.status |= VmaStatus.heap }
                if area.path == "[stack]" { v.status |= VmaStatus.stack }
            }
        }
        return v
    }

    /// Runs of pages that hold data. In private file mappings only the pages the process
    /// changed (anonymous copies) count; the file has the rest.
    private func pageRuns(pagemap: Int32, area: MemoryArea, anonymousOnly: Bool) throws -> [(UInt64, Int)] {
        let present: UInt64 = 1 << 63, swapped: UInt64 = 1 << 62, filePage: UInt64 = 1 << 61
        let pfnMask: UInt64 = (1 << 55) - 1
        let total = Int(area.size / Self.pageSize)
        var runs: [(UInt64, Int)] = []
        var entries = [UInt64](repeating: 0, count: min(total, 65536))
        var index = 0
        var runStart: UInt64 = 0, runPages = 0
        while index < total {
            let count = min(entries.count, total - index)
            let offset = off_t((area.start / Self.pageSize + UInt64(index)) * 8)
            let n = entries.withUnsafeMutableBytes { pread(pagemap, $0.baseAddress, count * 8, offset) }
            if n != count * 8 { throw CheckpointError.errno("read pagemap at \(area.start.hex)") }
            for i in 0..<count {
                let e = entries[i]
                var keep = false
                if e & swapped != 0 {
                    keep = true
                } else if e & present != 0 {
                    let pfn = e & pfnMask
                    if anonymousOnly && e & filePage != 0 { keep = false }
                    else if ZeroPage.isZero(pfn: pfn) { keep = false; stats.pagesSkippedZero += 1 }
                    else { keep = true }
                }
                let addr = area.start + UInt64(index + i) * Self.pageSize
                if keep {
                    if runPages > 0 && runStart + UInt64(runPages) * Self.pageSize == addr { runPages += 1 }
                    else {
                        if runPages > 0 { runs.append((runStart, runPages * Int(Self.pageSize))) }
                        runStart = addr; runPages = 1
                    }
                }
            }
            index += count
        }
        if runPages > 0 { runs.append((runStart, runPages * Int(Self.pageSize))) }
        stats.pagesScanned += UInt64(total)
        return runs
    }

    /// Shared anonymous memory: read once, from the object itself, through map_files.
    private func dumpShmem(pid: Int32, area: MemoryArea, shmid: UInt64) throws {
        try dumpShmem(path: "/proc/\(pid)/map_files/\(String(area.start, radix: 16))-\(String(area.end, radix: 16))", shmid: shmid)
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
        try writePages(pagemap: .pagemapShmem(shmid), runs: runs, forced: []) { pieces, base in
            var offset = 0
            for (start, len) in pieces {
                let n = pread(fd, base + offset, len, off_t(start))
                if n < 0 || (n != len && start + UInt64(n) != size) { throw CheckpointError.errno("read shared memory \(path)") }
                if n < len { (base + offset + n).initializeMemory(as: UInt8.self, repeating: 0, count: len - n) }
                offset += len
            }
        }
    }

    /// Writes a pagemap image and its pages image. The pages pass through a small buffer
    /// that stays in cache: `copy` fills it with one chunk of ranges (`runs`, then
    /// `forced` with `copyForced`), and a plain write moves it into the image, so each
    /// byte of the image is written once.
    private func writePages(pagemap: ImageName, runs: [(UInt64, Int)], forced: [(UInt64, Int)],
                            copyForced: (([(UInt64, Int)], UnsafeMutableRawPointer) throws -> Void)? = nil,
                            copy: ([(UInt64, Int)], UnsafeMutableRawPointer) throws -> Void) throws {
        let id = nextPagesID
        nextPagesID += 1
        var head = PagemapHead()
        head.pagesID = id
        let w = try images.writer(pagemap)
        try w.append(head)
        for (addr, len) in runs + forced {
            var e = PagemapEntry()
            e.vaddr = addr; e.nrPages = UInt64(len) / Self.pageSize; e.flags = PageFlags.present
            e.compatNrPages = UInt32(truncatingIfNeeded: min(e.nrPages, UInt64(UInt32.max)))
            try w.append(e)
        }
        try w.close()

        let path = images.file(.pages(id))
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 { throw CheckpointError.errno("create \(path)") }
        defer { close(fd) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.chunk, alignment: 4096)
        defer { buffer.deallocate() }
        var written = 0
        for (ranges, isForced) in [(runs, false), (forced, true)] {
            for piece in Self.chunks(ranges) {
                if isForced, let copyForced { try copyForced(piece, buffer) } else { try copy(piece, buffer) }
                let bytes = piece.reduce(0) { $0 + $1.1 }
                var done = 0
                while done < bytes {
                    let n = try Syscall.retrying("write \(path) at \(written + done) bytes") { write(fd, buffer + done, bytes - done) }
                    if n == 0 { throw CheckpointError.errno("write \(path) at \(written + done) bytes", .EIO) }
                    done += n
                }
                written += bytes
            }
        }
        if written > 0 && fsync(fd) != 0 { throw CheckpointError.errno("fsync \(path)") }
        stats.pagesWritten += UInt64(written) / Self.pageSize
    }

    static let chunk = 2 << 20

    /// `ranges` cut into groups of at most `chunk` bytes (splitting ranges where needed).
    static func chunks(_ ranges: [(UInt64, Int)]) -> [[(UInt64, Int)]] {
        var out: [[(UInt64, Int)]] = []
        var current: [(UInt64, Int)] = []
        var size = 0
        for (start, length) in ranges {
            var addr = start, left = length
            while left > 0 {
                let take = min(left, chunk - size)
                current.append((addr, take))
                size += take; addr += UInt64(take); left -= take
                if size == chunk { out.append(current); current = []; size = 0 }
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}

/// The kernel's shared zero page (and huge zero page): read faults on untouched anonymous
/// memory map it, and such pages need not be saved.
enum ZeroPage {
    static let pfns: (small: UInt64, huge: UInt64?) = {
        func pfn(of p: UnsafeMutableRawPointer) -> UInt64 {
            let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
            defer { close(fd) }
            var e: UInt64 = 0
            _ = pread(fd, &e, 8, off_t(UInt(bitPattern: p) / 4096 * 8))
            return e & ((1 << 55) - 1)
        }
        let size = 4 << 20
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED else { return (0, nil) }
        defer { munmap(m, size) }
        let small = m.load(as: UInt8.self) == 0 ? pfn(of: m) : 0
        let aligned = UnsafeMutableRawPointer(bitPattern: (UInt(bitPattern: m) + (2 << 20) - 1) & ~UInt((2 << 20) - 1))!
        _ = madvise(aligned, 2 << 20, 14 /* MADV_HUGEPAGE */)
        let huge = aligned.load(as: UInt8.self) == 0 ? pfn(of: aligned) : 0
        return (small, huge != small && huge != 0 ? huge & ~511 : nil)
    }()

    static func isZero(pfn: UInt64) -> Bool {
        if pfn == 0 { return false }
        if pfn == pfns.small { return true }
        if let h = pfns.huge, pfn >= h && pfn < h + 512 { return true }
        return false
    }
}
