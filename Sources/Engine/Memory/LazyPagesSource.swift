import Foundation
import LinuxKernel
import Images

/// Where the lazy-pages daemon takes the saved pages of the areas it serves: the pages
/// images (local), or for runs a dump --lazy-pages left out, its page server (remote).
protocol LazyPagesSource: AnyObject {
    /// The saved pages of `p` within `areas`; their bytes are readable once `fill` returns.
    func pieces(of p: CheckpointImages.Process, within areas: [(UInt64, UInt64)]) throws -> [PagePiece]
    /// Makes the bytes of `piece` (a piece of `pieces`, moved or not) readable.
    func fill(_ piece: PagePiece) throws
    /// Every page was copied: the source may let go.
    func finish() throws
}

/// The pages images, mapped (not read in at once: a task's first fault would wait for
/// the whole image).
final class LocalPagesSource: LazyPagesSource {
    let pages: PagesImage

    init(dir: ImageDirectory) { pages = PagesImage(dir: dir, populate: false) }

    func pieces(of p: CheckpointImages.Process, within areas: [(UInt64, UInt64)]) throws -> [PagePiece] {
        if !p.lazyPagemap.isEmpty {
            throw CheckpointError(.invalidArgument, "lazy pages: pid \(p.pid)'s pages are on the dump's lazy page server: run lazy-pages --page-server --address --port")
        }
        // Through the parent chain, as the eager restore reads them (a dump on pre-dumps).
        return try pages.saved(pid: p.pid, pagemap: p.pagemap, pagesID: p.pagesID).pieces(within: areas)
    }

    func fill(_ piece: PagePiece) throws {}
    func finish() throws {}
}

/// The runs a dump --lazy-pages left out, asked of its page server with PS_IOV_GET (CRIU's
/// uffd.c remote mode). Each task's lazy runs get a shadow mapping, untouched until a
/// page is asked for: pending pieces point into it like into a pages image, so fork,
/// mremap and munmap move and drop them alike, and a page is fetched once.
final class RemotePagesSource: LazyPagesSource {
    private final class Shadow {
        let pid: Int32
        let base: UnsafeMutableRawPointer
        let size: Int
        /// (original address, offset in the shadow, length), in shadow order.
        let runs: [(UInt64, Int, Int)]
        var fetched: [Bool]
        init(pid: Int32, base: UnsafeMutableRawPointer, size: Int, runs: [(UInt64, Int, Int)]) {
            self.pid = pid; self.base = base; self.size = size; self.runs = runs
            fetched = Array(repeating: false, count: size / SavedPages.page)
        }
    }

    private let local: LocalPagesSource
    private let socket: PageServerSocket
    private var shadows: [Shadow] = []
    private var open = true
    private(set) var pagesFetched = 0

    init(dir: ImageDirectory, server: PageServerAddress) throws {
        local = LocalPagesSource(dir: dir)
        let peer = "lazy page server \(server.host ?? "localhost"):\(server.port)"
        socket = PageServerSocket(fd: try RemotePageTransfer.connect(server, peer: peer), peer: peer)
    }

    deinit {
        if open { close(socket.fd) }
        for s in shadows { munmap(s.base, s.size) }
    }

    func pieces(of p: CheckpointImages.Process, within areas: [(UInt64, UInt64)]) throws -> [PagePiece] {
        var own = p
        own.lazyPagemap = []
        var out = try local.pieces(of: own, within: areas)
        let size = p.lazyPagemap.reduce(0) { $0 + Int($1.nrPages) * SavedPages.page }
        guard size > 0 else { return out }
        guard let m = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), m != MAP_FAILED else {
            throw CheckpointError.errno("lazy pages: map \(size) bytes for pid \(p.pid)'s remote pages")
        }
        var runs: [(UInt64, Int, Int)] = [], offset = 0
        for e in p.lazyPagemap {
            runs.append((e.vaddr, offset, Int(e.nrPages) * SavedPages.page))
            offset += Int(e.nrPages) * SavedPages.page
        }
        shadows.append(Shadow(pid: p.pid, base: m, size: size, runs: runs))
        let saved = SavedPages(runs: runs.map { SavedPages.Run(start: $0.0, end: $0.0 + UInt64($0.2), data: UnsafeRawPointer(m + $0.1)) })
        out += saved.pieces(within: areas)
        return out
    }

    func fill(_ piece: PagePiece) throws {
        guard let s = shadows.first(where: { piece.data >= UnsafeRawPointer($0.base) && piece.data < UnsafeRawPointer($0.base + $0.size) }) else { return }
        let first = UnsafeRawPointer(s.base).distance(to: piece.data) / SavedPages.page
        var page = first
        while page < first + piece.length / SavedPages.page {
            if s.fetched[page] { page += 1; continue }
            guard let run = s.runs.first(where: { $0.1 <= page * SavedPages.page && page * SavedPages.page < $0.1 + $0.2 }) else { return }
            // The missing pages from here, within the run and the piece.
            var end = page
            while end < first + piece.length / SavedPages.page && end * SavedPages.page < run.1 + run.2 && !s.fetched[end] { end += 1 }
            try fetch(s, from: page, count: end - page, address: run.0 + UInt64(page * SavedPages.page - run.1))
            page = end
        }
    }

    /// PS_IOV_GET for `count` pages at `address`; the server may answer fewer at a time.
    private func fetch(_ s: Shadow, from page: Int, count: Int, address: UInt64) throws {
        var done = 0
        while done < count {
            let vaddr = address + UInt64(done * SavedPages.page)
            try socket.send(PageServerCommand(PageServerCommand.get, nrPages: UInt64(count - done), vaddr: vaddr, dstID: UInt64(s.pid)), what: "GET of pid \(s.pid)'s pages at \(vaddr.hex)")
            guard let reply = try socket.receive(what: "pages at \(vaddr.hex)") else {
                throw CheckpointError(.kernel, "\(socket.peer): the dump hung up before sending pid \(s.pid)'s pages at \(vaddr.hex)", errno: .EPIPE)
            }
            let n = Int(reply.nrPages)
            guard reply.command == PageServerCommand.addWithFlags, reply.vaddr == vaddr, reply.dstID == UInt64(s.pid), n > 0, n <= count - done else {
                throw CheckpointError(.invalidArgument, "\(socket.peer): answered GET of \(count - done) pages at \(vaddr.hex) with command 0x\(String(reply.cmd, radix: 16)), \(n) pages at \(reply.vaddr.hex)")
            }
            try socket.reply(s.base + (page + done) * SavedPages.page, n * SavedPages.page, what: "pid \(s.pid)'s pages at \(vaddr.hex)")
            for i in page + done..<page + done + n { s.fetched[i] = true }
            done += n
            pagesFetched += n
        }
    }

    /// CLOSE and the server's status word: the dump may end.
    func finish() throws {
        guard open else { return }
        open = false
        let status = try socket.sendClose()
        if status != 0 { throw CheckpointError(.kernel, "\(socket.peer): ended with status \(status)") }
    }
}
