import Foundation
import LinuxKernel
import Images

extension DumpOptions {
    /// Where this dump's pages go: the page server when one is named, else the images.
    func pageTransfer(images: ImageDirectory) throws -> PageTransfer {
        if let pageServer { return try RemotePageTransfer(connectingTo: pageServer) }
        return LocalPageTransfer(images: images)
    }
}

/// Pages to a page server (CRIU's or ours) over CRIU's page_xfer protocol: per pagemap an
/// OPEN2 (answered with whether the server has a parent image), then one ADD_F per run,
/// the pages following their header in the same sendmsg; CLOSE and its status word last.
/// The server writes the pagemap and pages images; nothing of them is written here.
final class RemotePageTransfer: PageTransfer {
    private let socket: PageServerSocket
    private var open = true

    init(connectingTo address: PageServerAddress) throws {
        let peer = "page server \(address.host ?? "localhost"):\(address.port)"
        socket = PageServerSocket(fd: try Self.connect(address, peer: peer), peer: peer)
    }

    deinit { if open { close(socket.fd) } }

    static func connect(_ address: PageServerAddress, peer: String) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(address.host ?? "localhost", String(address.port), &hints, &list)
        guard rc == 0, let first = list else {
            throw CheckpointError(.invalidArgument, "\(peer): cannot resolve the address: \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(first) }
        var failure = Errno.ECONNREFUSED
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let ai = next {
            next = ai.pointee.ai_next
            let fd = Glibc.socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), ai.pointee.ai_protocol)
            if fd < 0 { failure = Errno.current; continue }
            if Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 {
                // Headers and replies are small and each is waited for: no Nagle delay.
                var on: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
                return fd
            }
            failure = Errno.current
            close(fd)
        }
        throw CheckpointError(.kernel, "\(peer): cannot connect: \(failure.detail)", errno: failure)
    }

    func send(_ pagemap: ImageName, runs: [PageRun], copy: PageCopy) throws -> Int {
        let dst = try PageServerCommand.destination(pagemap)
        try socket.send(PageServerCommand(PageServerCommand.open2, dstID: dst), what: "OPEN2 of \(pagemap)")
        var hasParent: UInt8 = 0
        try socket.reply(&hasParent, 1, what: "OPEN2 of \(pagemap)")
        if hasParent == 0, runs.contains(where: \.inParent) {
            throw CheckpointError(.invalidState, "\(socket.peer) has no parent images for \(pagemap): pages left in the parent cannot be referred to")
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: PageChunks.size, alignment: 4096)
        defer { buffer.deallocate() }
        // One batch: the headers, and what goes on the wire in order (a header, or bytes of the buffer).
        enum Part { case header(Int), bytes(Int, Int) }
        var headers: [(UInt64, UInt64, UInt64, UInt64)] = []
        var parts: [Part] = []
        var pieces: [(UInt64, Int)] = []
        var filled = 0, sent = 0
        func flush() throws {
            if !pieces.isEmpty { try copy(pieces, buffer) }
            try headers.withUnsafeMutableBufferPointer { h in
                var iov = parts.map { part -> iovec in
                    switch part {
                    case .header(let i): return iovec(iov_base: UnsafeMutableRawPointer(h.baseAddress! + i), iov_len: PageServerCommand.size)
                    case .bytes(let offset, let length): return iovec(iov_base: buffer + offset, iov_len: length)
                    }
                }
                try socket.send(&iov, what: "the pages of \(pagemap)")
            }
            headers.removeAll(keepingCapacity: true); parts.removeAll(keepingCapacity: true); pieces.removeAll(keepingCapacity: true)
            filled = 0
        }
        for run in runs {
            let flags = run.flags
            headers.append(PageServerCommand(PageServerCommand.addWithFlags, flags: flags, nrPages: UInt64(run.length) / MemoryDump.pageSize,
                                             vaddr: run.address, dstID: dst).words)
            parts.append(.header(headers.count - 1))
            var address = run.address, left = run.carriesBytes ? run.length : 0
            while left > 0 {
                let take = min(left, PageChunks.size - filled)
                pieces.append((address, take)); parts.append(.bytes(filled, take))
                filled += take; address += UInt64(take); left -= take; sent += take
                if filled == PageChunks.size || parts.count >= PageServerCommand.maxIovecs - 2 { try flush() }
            }
            if parts.count >= PageServerCommand.maxIovecs - 2 { try flush() }
        }
        if !parts.isEmpty { try flush() }
        return sent
    }

    /// CLOSE, then the server's status word: only then are the images on its side complete.
    func finish() throws {
        guard open else { return }
        open = false
        let status = try socket.sendClose()
        if status != 0 { throw CheckpointError(.kernel, "\(socket.peer) failed to store the pages (status \(status))") }
    }
}
