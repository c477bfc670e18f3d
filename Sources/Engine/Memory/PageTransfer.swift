import Foundation
import LinuxKernel
import Images

/// A run of pages of one pagemap: its bytes travel with it, or (`inParent`) they are in
/// the parent images (an earlier pre-dump's) and only the pagemap entry does, or
/// (`lazy`, dump --lazy-pages) a lazy page server serves them later (PE_LAZY alone).
struct PageRun: Equatable {
    var address: UInt64
    var length: Int
    var inParent = false
    var lazy = false

    var flags: UInt32 { lazy ? PageFlags.lazy : inParent ? PageFlags.parent : PageFlags.present }
    var carriesBytes: Bool { !inParent && !lazy }
}

/// Fills `buffer` with the bytes of `ranges` (address, length), one after the other.
typealias PageCopy = (_ ranges: [(UInt64, Int)], _ buffer: UnsafeMutableRawPointer) throws -> Void

/// Where dumped pages go, CRIU's page_xfer: the image directory (pagemap and pages images)
/// or, for a page server, a socket. Speed work on moving pages belongs behind this.
protocol PageTransfer: AnyObject {
    /// One pagemap (`pagemap-PID` or `pagemap-shmem-ID`): `runs` in address order, and
    /// the bytes of those not in the parent, produced by `copy` one chunk at a time.
    /// Returns the number of bytes moved.
    func send(_ pagemap: ImageName, runs: [PageRun], copy: PageCopy) throws -> Int
    /// After the last pagemap: the pages are stored (a page server has acknowledged them).
    func finish() throws
}

extension PageTransfer {
    func finish() throws {}
}

enum PageChunks {
    /// Bytes moved per `copy` call: large enough for few syscalls, small enough to stay in cache.
    static let size = 2 << 20

    /// `ranges` cut into groups of at most `size` bytes (splitting ranges where needed).
    static func split(_ ranges: [(UInt64, Int)]) -> [[(UInt64, Int)]] {
        var out: [[(UInt64, Int)]] = []
        var current: [(UInt64, Int)] = []
        var filled = 0
        for (start, length) in ranges {
            var addr = start, left = length
            while left > 0 {
                let take = min(left, size - filled)
                current.append((addr, take))
                filled += take; addr += UInt64(take); left -= take
                if filled == size { out.append(current); current = []; filled = 0 }
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}

/// Pages into the image directory: a pagemap image, then its pages image, each byte of
/// which is written once from a buffer that stays in cache.
final class LocalPageTransfer: PageTransfer {
    let images: ImageDirectory
    private var nextPagesID: UInt32 = 1

    init(images: ImageDirectory) {
        self.images = images
    }

    func send(_ pagemap: ImageName, runs: [PageRun], copy: PageCopy) throws -> Int {
        let id = nextPagesID
        nextPagesID += 1
        var head = PagemapHead()
        head.pagesID = id
        let w = try images.writer(pagemap)
        try w.append(head)
        for run in runs {
            try w.append(PagemapEntry(vaddr: run.address, nrPages: UInt64(run.length) / MemoryDump.pageSize, flags: run.flags))
        }
        try w.close()

        let path = images.file(.pages(id))
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 { throw CheckpointError.errno("create \(path)") }
        defer { close(fd) }
        let chunks = PageChunks.split(runs.filter(\.carriesBytes).map { ($0.address, $0.length) })
        var offsets: [Int] = []
        var total = 0
        for chunk in chunks {
            offsets.append(total)
            total += chunk.reduce(0) { $0 + $1.1 }
        }
        // Beyond a few chunks, every core copies its own share: reading the task's pages and
        // filling the page cache are both per-page kernel work that does not contend.
        let workers = chunks.count < 4 ? 1 : min(ProcessInfo.processInfo.activeProcessorCount, chunks.count / 2)
        let failures = FirstFailure()
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: PageChunks.size, alignment: 4096)
            defer { buffer.deallocate() }
            for i in (chunks.count * w / workers)..<(chunks.count * (w + 1) / workers) where failures.first == nil {
                do {
                    try copy(chunks[i], buffer)
                    try Self.write(fd, buffer, chunks[i].reduce(0) { $0 + $1.1 }, at: offsets[i], path: path)
                } catch { failures.record(error) }
            }
        }
        if let first = failures.first { throw first }
        return total
    }

    private static func write(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ bytes: Int, at offset: Int, path: String) throws {
        var done = 0
        while done < bytes {
            let n = try Syscall.retrying("write \(path) at \(offset + done) bytes") { pwrite(fd, buffer + done, bytes - done, off_t(offset + done)) }
            if n == 0 { throw CheckpointError.errno("write \(path) at \(offset + done) bytes", .EIO) }
            done += n
        }
    }
}
