import Foundation
import LinuxKernel
import Images

/// The lazy-pages daemon's work (CRIU's uffd.c): serves each fault of a restored task with
/// its saved page (UFFDIO_COPY, from the images or a dump's lazy page server) or a zero
/// page, follows fork, mremap, munmap and madvise so every address space sees exactly its
/// dumped memory, and once the restore is over copies the rest in the background, then ends.
public final class LazyPagesServer {
    /// One address space: a restored task or a child it forked before all pages came.
    final class Space {
        let pid: Int32
        let uffd: Int32
        var pending: PendingPages
        init(pid: Int32, uffd: Int32, pending: PendingPages) { self.pid = pid; self.uffd = uffd; self.pending = pending }
    }

    private let images: CheckpointImages
    private let source: LazyPagesSource
    private let plan: MemoryInheritance
    private let log: Log
    private var spaces: [Space] = []
    private var nextBackground = 0
    /// Receives every uffd this daemon holds (a forked child's too, with pid 0) and the
    /// host pid of the task it was sent for.
    public var onSpace: ((Int32, Int32) -> Void)?
    /// Test knob: seconds between the end of the restore and the first background copy.
    public var backgroundDelay: Double = 0
    public private(set) var pagesOnFault = 0, zeroPagesOnFault = 0, pagesInBackground = 0, forks = 0

    /// `pageServer`: the runs a dump --lazy-pages left out come from its page server.
    public init(imagesDir: String, pageServer: PageServerAddress?, log: Log) throws {
        let images = try CheckpointImages(dir: ImageDirectory(path: imagesDir))
        self.images = images
        if let pageServer { source = try RemotePagesSource(dir: images.dir, server: pageServer) } else { source = LocalPagesSource(dir: images.dir) }
        plan = MemoryInheritance(images)
        self.log = log
    }

    /// The uffd of restored task `pid` (`hostPid` on the host; ours now): its lazy areas'
    /// saved pages are pending.
    public func add(pid: Int32, hostPid: Int32, uffd: Int32) throws {
        guard let p = images.processes.first(where: { $0.pid == pid }) else {
            close(uffd)
            throw CheckpointError(.invalidArgument, "lazy pages: pid \(pid) is not in the images")
        }
        let pieces = try source.pieces(of: p, within: LazyAreas.areas(p, plan: plan).map { ($0.start, $0.end) })
        let space = Space(pid: pid, uffd: uffd, pending: PendingPages(pieces))
        spaces.append(space)
        onSpace?(hostPid, uffd)
        log.info("pid \(pid): \(space.pending.pageCount) pages pending")
    }

    /// Until every address space has all its pages: `control` is the restore's connection,
    /// read by `receive` when it is readable (false: the restore is over).
    public func serve(control: Int32, receive: () throws -> Bool) throws {
        var restoring = true
        var restoredAt: Date?
        while true {
            let background = !restoring && spaces.contains { !$0.pending.isEmpty }
            let waiting = restoredAt.map { Date().timeIntervalSince($0) < backgroundDelay } ?? true
            if !restoring && !background {
                for s in spaces { try handleMessages(s) }
                if !spaces.contains(where: { !$0.pending.isEmpty }) { break }
                continue
            }
            var fds = spaces.map { pollfd(fd: $0.uffd, events: Int16(POLLIN), revents: 0) }
            if restoring { fds.append(pollfd(fd: control, events: Int16(POLLIN), revents: 0)) }
            let timeout: Int32 = background ? (waiting ? 50 : 0) : -1
            if poll(&fds, nfds_t(fds.count), timeout) < 0 && errno != EINTR { throw CheckpointError.errno("lazy pages: poll") }
            let ready = spaces
            for (s, p) in zip(ready, fds) where p.revents != 0 {
                if p.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { drop(s, "its userfaultfd hung up"); continue }
                try handleMessages(s)
            }
            if restoring, let last = fds.last, last.revents != 0, try !receive() {
                restoring = false
                restoredAt = Date()
            }
            if background && !waiting { try copyInBackground() }
        }
        for s in spaces { close(s.uffd) }
        try source.finish()
        log.info("lazy pages done: \(pagesOnFault) pages on fault, \(zeroPagesOnFault) zero pages, \(pagesInBackground) in the background, \(forks) forks followed")
    }

    private func drop(_ s: Space, _ why: String) {
        log.info("pid \(s.pid) (uffd \(s.uffd)): \(why); \(s.pending.pageCount) pages no longer needed")
        close(s.uffd)
        spaces.removeAll { $0 === s }
    }

    /// Events first, in order, then the faults: a fault that met a newer event is served
    /// once that event is applied.
    private func handleMessages(_ s: Space) throws {
        var faults: [UInt64] = []
        while true {
            let messages = try Userfaultfd.read(s.uffd)
            if messages.isEmpty && faults.isEmpty { return }
            for m in messages {
                switch m {
                case .fault(let address): faults.append(address)
                case .fork(let ufd):
                    forks += 1
                    let child = Space(pid: s.pid, uffd: ufd, pending: s.pending)
                    spaces.append(child)
                    onSpace?(0, ufd)
                case .remap(let from, let to, let length): s.pending.move(from: from, to: to, length: length)
                case .removed(let start, let end): s.pending.cut(start, end)
                case .other(let e): log.warn("pid \(s.pid): unexpected userfaultfd event \(e)")
                }
            }
            var again: [UInt64] = []
            for address in faults {
                if try !serveFault(s, at: address) { again.append(address) }
                if !spaces.contains(where: { $0 === s }) { return }
            }
            faults = again
        }
    }

    /// The faulting page and the pending ones after it in its run (a task reading memory
    /// mostly reads on). False when an event must be read first (EAGAIN).
    private func serveFault(_ s: Space, at address: UInt64, around: Int = 16 * SavedPages.page) throws -> Bool {
        if let piece = s.pending.piece(at: address, limit: around) {
            try source.fill(piece)
            switch Userfaultfd.copy(s.uffd, to: address, from: piece.data, length: piece.length) {
            case .success(let n):
                s.pending.cut(address, address + UInt64(n))
                pagesOnFault += n / SavedPages.page
                return true
            case .failure(.EAGAIN): return false
            // The run spans two areas now (the task split one with mprotect): one page.
            case .failure(.ENOENT) where piece.length > SavedPages.page: return try serveFault(s, at: address, around: SavedPages.page)
            case .failure(let e):
                s.pending.cut(address, address + UInt64(SavedPages.page))
                return try unserved(s, address, e)
            }
        }
        guard let e = Userfaultfd.zeroPage(s.uffd, at: address) else { zeroPagesOnFault += 1; return true }
        if e == .EAGAIN { return false }
        return try unserved(s, address, e)
    }

    /// Already there (the background copy won): wake the waiter; the task is gone: drop it.
    private func unserved(_ s: Space, _ address: UInt64, _ e: Errno) throws -> Bool {
        switch e {
        case .EEXIST, .ENOENT: Userfaultfd.wake(s.uffd, at: address)
        case .ESRCH: drop(s, "its process is gone")
        default: throw CheckpointError.errno("lazy pages: pid \(s.pid): page \(address.hex)", e)
        }
        return true
    }

    /// One piece (up to 2 MiB) of the next address space with pages pending.
    private func copyInBackground() throws {
        let candidates = spaces.filter { !$0.pending.isEmpty }
        guard !candidates.isEmpty else { return }
        nextBackground += 1
        try copyNext(candidates[nextBackground % candidates.count], limit: 2 << 20)
    }

    private func copyNext(_ s: Space, limit: Int) throws {
        guard let piece = s.pending.next(limit: limit) else { return }
        try source.fill(piece)
        switch Userfaultfd.copy(s.uffd, to: piece.address, from: piece.data, length: piece.length) {
        case .success(let n):
            s.pending.cut(piece.address, piece.address + UInt64(n))
            pagesInBackground += n / SavedPages.page
        case .failure(.EAGAIN): try handleMessages(s)
        case .failure(.EEXIST): s.pending.cut(piece.address, piece.address + UInt64(SavedPages.page))
        // The piece spans two areas (the task split one with mprotect), or its area is gone.
        case .failure(.ENOENT) where limit > SavedPages.page: try copyNext(s, limit: SavedPages.page)
        case .failure(.ENOENT): s.pending.cut(piece.address, piece.address + UInt64(SavedPages.page))
        case .failure(.ESRCH): drop(s, "its process is gone")
        case .failure(let e): throw CheckpointError.errno("lazy pages: pid \(s.pid): copy \(piece.address.hex)+\(piece.length)", e)
        }
    }
}
