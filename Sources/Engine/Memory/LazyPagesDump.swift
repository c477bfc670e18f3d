import Foundation
import LinuxKernel
import Images

/// dump --lazy-pages (CRIU's cr_lazy_mem_dump): the lazy areas' pages are left out of the
/// pages images and served afterwards, on PS_IOV_GET, to `lazy-pages --page-server`.
/// CRIU holds them in its page pipes; here they are copied into the dumper while the tree
/// is frozen, so the tree's final state (killed, or left running) does not wait for the
/// restore, and the source's pids are free for a restore on the same host.
public final class LazyPagesDump {
    /// The port listened on (the one the kernel chose when asked for 0).
    public let port: UInt16
    private let listener: Int32
    /// Per task (its pid in the tree), the lazy runs and where their bytes are held.
    private var tasks: [Int32: [(run: PageRun, bytes: UnsafeMutableRawPointer)]] = [:]
    private var held: [(UnsafeMutableRawPointer, Int)] = []
    /// Each process's pages, until the whole tree is known (MemoryDump.sendLazyTree).
    private var waiting: [WaitingPages] = []
    /// The tree's pstree and mm entries, as the inheritance plan reads them.
    private(set) var tree: [MemoryInheritance.Task] = []
    public private(set) var pagesHeld = 0, pagesServed = 0

    /// Listens before the tree is frozen: a bad address fails the dump before it touches
    /// the tree, and a lazy-pages daemon that connects early waits in the backlog.
    public init(address: PageServerAddress) throws {
        (listener, port) = try PageServer.listen(address)
    }

    deinit {
        close(listener)
        for (p, n) in held { munmap(p, n) }
    }

    func wait(vpid: Int32, runs: [PageRun], lazyCandidates: [PageRun], memory: RemoteMemory, copy: @escaping PageCopy) {
        waiting.append(WaitingPages(vpid: vpid, runs: runs, lazyCandidates: lazyCandidates, memory: memory, copy: copy))
    }

    func describe(_ task: MemoryInheritance.Task) { tree.append(task) }

    /// The waiting pages, handed over once (their fds and closures go with them).
    func takeWaiting() -> [WaitingPages] {
        defer { waiting = [] }
        return waiting
    }

    /// Copies the pages of `runs` out of the frozen task.
    func hold(vpid: Int32, runs: [PageRun], from memory: RemoteMemory) throws {
        let size = runs.reduce(0) { $0 + $1.length }
        guard size > 0 else { return }
        guard let m = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), m != MAP_FAILED else {
            throw CheckpointError.errno("lazy pages: hold \(size) bytes of pid \(vpid)'s pages")
        }
        held.append((m, size))
        var offset = 0
        for run in runs {
            try memory.copyOut([(run.address, run.length)], into: m + offset)
            tasks[vpid, default: []].append((run, m + offset))
            offset += run.length
        }
        pagesHeld += size / SavedPages.page
    }

    /// Serves one lazy-pages daemon until it says CLOSE (it has every page). A hang-up
    /// before CLOSE is a failure: the restore side died without its pages.
    public func serve(log: Log) throws {
        log.info("lazy pages: serving \(pagesHeld) pages on port \(port)")
        let fd = try Syscall.retrying("lazy pages: accept on port \(port)") { accept(listener, nil, nil) }
        defer { close(fd) }
        var on: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        let socket = PageServerSocket(fd: fd, peer: "lazy pages on port \(port)")
        while true {
            guard let c = try socket.receive(what: "a request") else {
                throw CheckpointError(.kernel, "\(socket.peer): the lazy-pages daemon hung up before CLOSE, \(pagesServed) of \(pagesHeld) pages served", errno: .EPIPE)
            }
            switch c.command {
            case PageServerCommand.get: try answer(c, on: socket)
            case PageServerCommand.close, PageServerCommand.forceClose:
                try socket.send(bytesOf: Int32(0), what: "the final status")
                log.info("lazy pages: \(pagesServed) of \(pagesHeld) pages served; session over")
                return
            default:
                throw CheckpointError(.invalidArgument, "\(socket.peer): command 0x\(String(c.cmd, radix: 16)) is not a lazy page request")
            }
        }
    }

    /// PS_IOV_GET: as many of the asked pages as one run holds, after an ADD_F header
    /// (CRIU's page_server_get_pages); dst_id is the task's pid in the tree.
    private func answer(_ c: PageServerCommand, on socket: PageServerSocket) throws {
        let vpid = Int32(truncatingIfNeeded: c.dstID)
        guard let (run, bytes) = tasks[vpid]?.first(where: { $0.run.address <= c.vaddr && c.vaddr < $0.run.address + UInt64($0.run.length) }),
              c.nrPages > 0, c.vaddr % UInt64(SavedPages.page) == 0 else {
            throw CheckpointError(.invalidArgument, "\(socket.peer): pid \(vpid) has no lazy pages at \(c.vaddr.hex) (\(c.nrPages) asked)")
        }
        let start = Int(c.vaddr - run.address)
        let length = min(Int(c.nrPages) * SavedPages.page, run.length - Int(c.vaddr - run.address))
        var header = PageServerCommand(PageServerCommand.addWithFlags, flags: PageFlags.present, nrPages: UInt64(length / SavedPages.page), vaddr: c.vaddr, dstID: c.dstID).words
        try withUnsafeMutableBytes(of: &header) { h in
            var iov = [iovec(iov_base: h.baseAddress, iov_len: h.count), iovec(iov_base: bytes + start, iov_len: length)]
            try socket.send(&iov, what: "pages at \(c.vaddr.hex)")
        }
        pagesServed += length / SavedPages.page
    }
}
