import Foundation
import LinuxKernel
import Images

/// The receiving side of CRIU's page_xfer (`page-server`): listens, takes one connection,
/// and writes pagemap-*.img and pages-*.img into the image directory as CRIU's page server
/// does, for a dump by CRIU or by us. The session ends at CLOSE, answered with a status
/// word once every image is on disk, then the server waits for the dumper to hang up.
public final class PageServer {
    public let images: ImageDirectory
    /// The port listened on (the one the kernel chose when asked for 0).
    public let port: UInt16
    private let listener: Int32
    private let log: Log
    /// CRIU's page server numbers its pages images from 0x10001 (up_page_ids_base), so
    /// they never meet the dumper's own (shared memory) in one directory.
    private var nextPagesID: UInt32 = 0x10001
    private var current: PagemapSink?

    /// Listens on `address`; `parent` (--prev-images-dir) becomes the directory's `parent`
    /// link, as CRIU makes it, and answers OPEN2's question about a parent image.
    public init(images: ImageDirectory, address: PageServerAddress, parent: String?, log: Log) throws {
        self.images = images
        self.log = log
        if let parent {
            let target = parent.hasPrefix("/") ? parent : (images.path as NSString).appendingPathComponent(parent)
            guard access(target, R_OK) == 0 else { throw CheckpointError.errno("parent images \(parent) (from \(images.path))") }
            try images.linkParent(parent)
        }
        (listener, port) = try Self.listen(address)
    }

    deinit { close(listener) }

    static func listen(_ address: PageServerAddress) throws -> (Int32, UInt16) {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        // No address: IPv6's any, which takes IPv4 too once V6ONLY is off.
        if address.host == nil { hints.ai_family = AF_INET6 }
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(address.host, String(address.port), &hints, &list)
        guard rc == 0, let ai = list else {
            throw CheckpointError(.invalidArgument, "page server address \(address): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(ai) }
        let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw CheckpointError.errno("page server: socket") }
        var on: Int32 = 1, off: Int32 = 0
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        if ai.pointee.ai_family == AF_INET6 { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<Int32>.size)) }
        guard bind(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0, Glibc.listen(fd, 1) == 0 else {
            let err = CheckpointError.errno("page server: listen on \(address)")
            close(fd)
            throw err
        }
        var bound = sockaddr_in6()
        var len = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        // sin_port and sin6_port sit at the same offset, in network order.
        return (fd, UInt16(bigEndian: bound.sin6_port))
    }

    /// Accepts one dumper and serves it until CLOSE and its hang-up.
    public func serve() throws {
        let fd = try Syscall.retrying("page server: accept on port \(port)") { accept(listener, nil, nil) }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var on: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        let socket = PageServerSocket(fd: fd, peer: "page server on port \(port)")
        let pipe = try Syscall.pipe("page server: pipe")
        defer { close(pipe[0]); close(pipe[1]) }
        // A larger pipe moves more per splice; the default 64 KiB still works.
        _ = fcntl(pipe[1], Self.setPipeSize, Int32(1 << 20))
        defer { try? closeCurrent() }
        log.info("page server: connection accepted")
        while true {
            guard let c = try socket.receive(what: "a command") else {
                throw CheckpointError(.kernel, "\(socket.peer): the dumper hung up before CLOSE: the pages are incomplete", errno: .EPIPE)
            }
            switch c.command {
            case PageServerCommand.open, PageServerCommand.open2:
                try openPagemap(c.dstID)
                if c.command == PageServerCommand.open2 {
                    try socket.send(bytesOf: UInt8(current!.hasParent ? 1 : 0), what: "OPEN2's answer")
                }
            case PageServerCommand.parent:
                guard let name = PageServerCommand.pagemap(c.dstID) else { throw unknown(c, socket) }
                try socket.send(bytesOf: Int32(hasParent(name) ? 1 : 0), what: "PARENT's answer")
            case PageServerCommand.addWithFlags, PageServerCommand.add, PageServerCommand.hole:
                let flags = c.command == PageServerCommand.addWithFlags ? c.flags : c.command == PageServerCommand.add ? PageFlags.present : PageFlags.parent
                // CRIU before OPEN2 sent pages without opening first.
                if current?.dstID != c.dstID { try openPagemap(c.dstID) }
                if FaultPoint.pageServerKilled.isSet { kill(getpid(), SIGKILL) }
                try current!.add(vaddr: c.vaddr, nrPages: c.nrPages, flags: flags, from: socket, pipe: pipe)
            case PageServerCommand.close, PageServerCommand.forceClose:
                try closeCurrent()
                try socket.send(bytesOf: Int32(0), what: "the final status")
                // CRIU waits for the dumper to hang up (no TIME_WAIT on this side).
                var byte: UInt8 = 0
                if try socket.receive(&byte, 1, what: "the hang-up") {
                    throw CheckpointError(.invalidState, "\(socket.peer): data after CLOSE")
                }
                log.info("page server: session over")
                return
            case PageServerCommand.get:
                throw CheckpointError(.unsupported, "\(socket.peer): lazy pages (PS_IOV_GET) are not served")
            default:
                throw unknown(c, socket)
            }
        }
    }

    private static let setPipeSize: Int32 = 1031  // F_SETPIPE_SZ

    private func unknown(_ c: PageServerCommand, _ socket: PageServerSocket) -> CheckpointError {
        CheckpointError(.invalidArgument, "\(socket.peer): unknown command 0x\(String(c.cmd, radix: 16)) (dst_id 0x\(String(c.dstID, radix: 16)))")
    }

    private func hasParent(_ pagemap: ImageName) -> Bool {
        images.parentImages.map { FileManager.default.fileExists(atPath: $0.file(pagemap)) } ?? false
    }

    private func openPagemap(_ dstID: UInt64) throws {
        guard let name = PageServerCommand.pagemap(dstID) else {
            throw CheckpointError(.invalidArgument, "page server on port \(port): unknown pagemap type in dst_id 0x\(String(dstID, radix: 16))")
        }
        try closeCurrent()
        current = try PagemapSink(images: images, pagemap: name, dstID: dstID, pagesID: nextPagesID, hasParent: hasParent(name))
        nextPagesID += 1
        log.debug("page server: \(name) -> \(ImageName.pages(current!.pagesID))")
    }

    private func closeCurrent() throws {
        defer { current = nil }
        try current?.finish()
    }
}

/// One pagemap being received: its image and its pages image.
private final class PagemapSink {
    let dstID: UInt64
    let pagesID: UInt32
    let hasParent: Bool
    private let pagemap: ImageWriter
    private let pagesPath: String
    private let pages: Int32
    private var finished = false

    init(images: ImageDirectory, pagemap name: ImageName, dstID: UInt64, pagesID: UInt32, hasParent: Bool) throws {
        self.dstID = dstID; self.pagesID = pagesID; self.hasParent = hasParent
        pagemap = try images.writer(name)
        var head = PagemapHead()
        head.pagesID = pagesID
        try pagemap.append(head)
        pagesPath = images.file(.pages(pagesID))
        pages = open(pagesPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if pages < 0 { throw CheckpointError.errno("create \(pagesPath)") }
    }

    deinit { if !finished { close(pages) } }

    /// The entry, and for present pages their bytes, spliced from the socket into the file.
    func add(vaddr: UInt64, nrPages: UInt64, flags: UInt32, from socket: PageServerSocket, pipe: [Int32]) throws {
        try pagemap.append(PagemapEntry(vaddr: vaddr, nrPages: nrPages, flags: flags))
        guard flags & PageFlags.present != 0 else { return }
        var left = Int(nrPages) * Int(MemoryDump.pageSize)
        while left > 0 {
            let n = try Syscall.raw("\(socket.peer): receive pages at \(vaddr.hex)", Self.splice, Int(socket.fd), 0, Int(pipe[1]), 0, left, Self.move)
            if n == 0 { throw CheckpointError(.kernel, "\(socket.peer): the dumper hung up in the pages at \(vaddr.hex)", errno: .EPIPE) }
            var moved = 0
            while moved < n {
                let m = try Syscall.raw("write \(pagesPath)", Self.splice, Int(pipe[0]), 0, Int(pages), 0, n - moved, Self.move)
                if m == 0 { throw CheckpointError.errno("write \(pagesPath)", .EIO) }
                moved += m
            }
            left -= n
        }
    }

    func finish() throws {
        guard !finished else { return }
        finished = true
        defer { close(pages) }
        try pagemap.close(sync: true)
        if fsync(pages) != 0 { throw CheckpointError.errno("fsync \(pagesPath)") }
    }

    private static let splice = 275, move = 1  // SYS_splice (x86_64), SPLICE_F_MOVE
}
