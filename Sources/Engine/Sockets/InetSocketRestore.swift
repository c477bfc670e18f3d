import Foundation
import LinuxKernel
import Images

/// TCP and UDP sockets made again, in the restorer's process but in the tree's network
/// namespace: bound, listening or connected as dumped. An established connection is
/// rebuilt in repair mode (sequence numbers, options, queues, window; connect sends
/// nothing) and leaves repair mode only once every task holds its files; then the
/// network lock taken at dump is removed.
final class InetSocketRestore {
    let images: CheckpointImages
    /// Established connections in the images may be restored (CRIU's --tcp-established).
    var allowEstablished = false
    /// CRIU's --tcp-close: connections come back closed (EOF to read, EPIPE to write).
    var closeConnections = false
    var lockMethod = NetworkLockMethod.iptables
    private var closedHere: [TcpConnection] = []
    /// A task whose network namespace the sockets belong in; nil for ours.
    var netnsPid: Int32?
    private var made: [(fd: Int32, entry: InetSkEntry, repair: Bool)] = []
    /// Connections this restore locked (after a dump that left the tree running).
    private var lockedHere: [TcpConnection] = []
    private var lock: NetworkLock { NetworkLock(netns: netnsPid.map { "/proc/\($0)/ns/net" }, method: lockMethod) }
    /// Connections not yet accepted at the dump (entries no fd names: TcpPendingConnections),
    /// by their connection as their client sees it.
    private lazy var pendingByClient: [String: InetSkEntry] = {
        let named = Set(images.processes.flatMap { $0.fds.map(\.id) })
        var out: [String: InetSkEntry] = [:]
        for f in images.files.values where f.type == .inetsk && !named.contains(f.id) && Self.isConnection(f.isk) {
            let family = Int32(f.isk.family)
            out[TcpConnection(local: InetAddress(family: family, words: f.isk.dstAddr, port: f.isk.dstPort),
                              peer: InetAddress(family: family, words: f.isk.srcAddr, port: f.isk.srcPort)).description] = f.isk
        }
        return out
    }()
    /// Clients of such connections: they connect for real once their listener is back.
    private var clientsOfPending: [(fd: Int32, entry: InetSkEntry, conn: TcpConnection, pending: InetSkEntry)] = []

    init(images: CheckpointImages) { self.images = images }

    static func isConnection(_ e: InetSkEntry) -> Bool {
        e.proto == UInt32(IPPROTO_TCP) && e.dstPort != 0
    }

    /// The tcp-stream images of every connection in files.img, by socket inode.
    static func readStreams(_ files: [UInt32: FileEntry], _ dir: ImageDirectory) throws -> [UInt32: TcpRepairState] {
        var out: [UInt32: TcpRepairState] = [:]
        // --tcp-close dumps keep no stream: such connections can only come back closed.
        for f in files.values where f.type == .inetsk && isConnection(f.isk) && dir.exists(.tcpStream(f.isk.ino)) {
            var r = try dir.reader(.tcpStream(f.isk.ino))
            do {
                let e = try r.one(TcpStreamEntry.self)
                out[f.isk.ino] = TcpRepairState(entry: e, inq: try r.raw(Int(e.inqLen)), outq: try r.raw(Int(e.outqLen)))
            } catch let e as ImageError { throw e.checkpointError }
        }
        return out
    }

    func open(_ dumped: InetSkEntry) throws -> Int32 {
        var e = dumped
        let family = Int32(e.family)
        guard family == AF_INET || family == AF_INET6, [SOCK_STREAM, SOCK_DGRAM, SOCK_RAW].contains(where: { e.type == UInt32($0.rawValue) }) else {
            throw CheckpointError(.image, "files.img: inet socket \(e.id) of family \(e.family), type \(e.type) cannot be restored")
        }
        let local = InetAddress(family: family, words: e.srcAddr, port: e.srcPort)
        let peer = InetAddress(family: family, words: e.dstAddr, port: e.dstPort)
        guard local.words.count == (family == AF_INET6 ? 4 : 1), peer.words.count == local.words.count else {
            throw CheckpointError(.image, "files.img: inet socket \(e.id) has addresses of the wrong length")
        }
        let conn = TcpConnection(local: local, peer: peer)
        var connection = Self.isConnection(e)
        if connection && (closeConnections || images.tcpStreams[e.ino] == nil) {
            guard closeConnections else {
                throw CheckpointError(.image, "image \(ImageName.tcpStream(e.ino)): missing for TCP connection \(conn) (dumped with --tcp-close?); restore with --tcp-close")
            }
            connection = false
            closedHere.append(conn)
            e.shutdown = .both
            // A closed socket holds no port: it neither binds nor connects.
            e.srcPort = 0; e.dstPort = 0
        }
        if connection && !allowEstablished {
            throw CheckpointError(.invalidArgument, "the images hold the established TCP connection \(conn); restore with --tcp-established")
        }
        // Until every socket is back, nothing may answer for the connection: a segment from
        // a socket already made would meet a port still closed and be reset.
        let pending = connection ? pendingByClient[conn.description] : nil
        if connection, pending == nil, try lock.lockIfMissing(conn) { lockedHere.append(conn) }
        let fd = try makeSocket(family, Int32(e.type), Int32(e.proto), conn)
        do {
            try configure(fd, e, local: local, peer: peer, conn: conn, connection: connection && pending == nil, connectLater: pending != nil)
            if let pending { clientsOfPending.append((fd, e, conn, pending)) }
            made.append((fd, e, connection && pending == nil))
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    private func configure(_ fd: Int32, _ e: InetSkEntry, local: InetAddress, peer: InetAddress, conn: TcpConnection, connection: Bool, connectLater: Bool) throws {
        typealias O = SocketOption
        let s = SocketOption(fd: fd, owner: "\(e.proto == UInt32(IPPROTO_TCP) ? "TCP" : "UDP") socket \(conn)")
        if e.v6Only { try s.set(O.solIPv6, O.ipv6V6only, 1, "IPV6_V6ONLY") }
        // Sockets of the tree may share a port: every one binds with both reuse options,
        // the dumped values come back in finish().
        try s.set(O.solSocket, O.soReuseaddr, 1, "SO_REUSEADDR")
        try s.set(O.solSocket, O.soReuseport, 1, "SO_REUSEPORT")
        if connection {
            guard let stream = images.tcpStreams[e.ino] else {
                throw CheckpointError(.image, "image \(ImageName.tcpStream(e.ino)): missing for TCP connection \(conn)")
            }
            try s.set(O.solTCP, O.tcpRepair, 1, "TCP_REPAIR")
            try stream.restoreSequences(s, state: e.state)
            try bind(s, local, e)
            if e.state == FinState.synSent {
                // The SYN goes out again (into the lock), from the sequence number it had.
                if fcntl(fd, F_SETFL, O_NONBLOCK) != 0 { throw CheckpointError.errno("\(s.owner): set O_NONBLOCK") }
                try s.set(O.solTCP, O.tcpRepair, 0, "TCP_REPAIR off")
                try connect(s, peer, inProgress: true)
                try s.set(O.solTCP, O.tcpRepair, 1, "TCP_REPAIR")
            } else {
                try connect(s, peer)
            }
            let segment = TcpSegment(peer: peer, local: local)
            try stream.restoreConnection(s, state: e.state) { flags, seq, ack, window in
                try segment.send(flags: flags, seq: seq, ack: ack, window: window, netnsPid: self.netnsPid, owner: s.owner)
            }
        } else {
            let raw = e.type == UInt32(SOCK_RAW.rawValue)
            // A raw socket's "port" is its protocol: it is bound when it has an address.
            if raw ? local.words.contains(where: { $0 != 0 }) : e.srcPort != 0 { try bind(s, local, e) }
            if e.state == SocketState.listen {
                if listen(fd, Int32(bitPattern: e.backlog)) != 0 { throw CheckpointError.errno("\(s.owner): listen") }
            }
            if (e.dstPort != 0 || raw && e.state == SocketState.established) && !connectLater { try connect(s, peer) }
        }
        if fcntl(fd, F_SETFL, Int32(bitPattern: e.flags) & ~O_ACCMODE) != 0 { throw CheckpointError.errno("\(s.owner): set file flags") }
        if e.ipOpts.freebind { try IpOptsEntry.setFreebind(s, family: Int32(e.family), true) }
        try e.ipOpts.apply(s, family: Int32(e.family))
        try e.opts.apply(s)
        if e.hasTcpOpts && !connection {
            if e.tcpOpts.nodelay { try s.set(O.solTCP, O.tcpNodelay, 1, "TCP_NODELAY") }
            if e.tcpOpts.cork { try s.set(O.solTCP, O.tcpCork, 1, "TCP_CORK") }
        }
        if e.hasShutdown && e.shutdown != .none && !connection {
            // A closed TCP connection: shutdown marks the new socket so, though it says ENOTCONN.
            if Glibc.shutdown(fd, Int32(e.shutdown.rawValue - 1)) != 0 && !(errno == ENOTCONN && e.proto == UInt32(IPPROTO_TCP)) {
                throw CheckpointError.errno("\(s.owner): shutdown")
            }
        }
    }

    private func makeSocket(_ family: Int32, _ type: Int32, _ proto: Int32, _ conn: TcpConnection) throws -> Int32 {
        let make = { () throws -> Int32 in
            let fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue), proto)
            if fd < 0 { throw CheckpointError.errno("socket for \(conn)") }
            return fd
        }
        // A socket belongs to the network namespace of the thread that creates it.
        guard let pid = netnsPid else { return try make() }
        return try NamespaceJoin.run(in: pid, [.net], make)
    }

    private func bind(_ s: SocketOption, _ a: InetAddress, _ e: InetSkEntry) throws {
        // An IPv6 address may still be tentative in a fresh namespace: bind freely. A
        // socket that had IP_FREEBIND may be bound to an address this host lacks.
        if a.family == AF_INET6 || e.ipOpts.freebind { try IpOptsEntry.setFreebind(s, family: a.family, true) }
        let addr = a.sockaddr
        if Glibc.bind(s.fd, addr.withUnsafeBytes { $0.baseAddress!.assumingMemoryBound(to: sockaddr.self) }, socklen_t(addr.count)) != 0 {
            throw CheckpointError.errno("\(s.owner): bind")
        }
        if a.family == AF_INET6 && !e.ipOpts.freebind { try IpOptsEntry.setFreebind(s, family: a.family, false) }
    }

    private func connect(_ s: SocketOption, _ a: InetAddress, inProgress: Bool = false) throws {
        let addr = a.sockaddr
        if Glibc.connect(s.fd, addr.withUnsafeBytes { $0.baseAddress!.assumingMemoryBound(to: sockaddr.self) }, socklen_t(addr.count)) != 0
            && !(inProgress && errno == EINPROGRESS) {
            throw CheckpointError.errno("\(s.owner): connect")
        }
    }

    /// Every task holds its sockets: the reuse options get their dumped values and the
    /// connections leave repair mode (the kernel resets SO_REUSEADDR then, so that first).
    func finish(log: Log) throws {
        for c in clientsOfPending { try connectPending(c, log: log) }
        for m in made {
            let s = SocketOption(fd: m.fd, owner: "socket \(m.entry.ino)")
            if m.repair { try s.set(SocketOption.solTCP, SocketOption.tcpRepair, 0, "TCP_REPAIR off") }
            try s.set(SocketOption.solSocket, SocketOption.soReuseaddr, m.entry.opts.reuseaddr ? 1 : 0, "SO_REUSEADDR")
            try s.set(SocketOption.solSocket, SocketOption.soReuseport, m.entry.opts.soReuseport ? 1 : 0, "SO_REUSEPORT")
        }
        if !made.isEmpty { log.info("\(made.count) inet sockets restored, \(made.filter(\.repair).count) connections out of repair mode") }
    }

    /// Removes the dump's network lock of every restored connection.
    func unlock(log: Log) throws {
        let lock = self.lock
        lockedHere = []
        for c in closedHere { try lock.unlock(c) }
        for m in made where m.repair {
            let e = m.entry, family = Int32(e.family)
            let conn = TcpConnection(local: InetAddress(family: family, words: e.srcAddr, port: e.srcPort),
                                     peer: InetAddress(family: family, words: e.dstAddr, port: e.dstPort))
            try lock.unlock(conn, present: true)
            log.info("TCP connection \(conn) unlocked")
        }
    }

    /// A failed restore: the rules it added go; those a killing dump left stay for the next try.
    func unlockAfterFailure(log: Log) {
        for c in lockedHere { do { try lock.unlock(c) } catch { log.error("\(error)") } }
        lockedHere = []
    }

    /// The client of a connection not yet accepted connects again (the lock a killing dump
    /// left for it goes first) and sends what the connection held, then what it had not
    /// yet delivered itself: the listener queues the connection with those bytes.
    private func connectPending(_ c: (fd: Int32, entry: InetSkEntry, conn: TcpConnection, pending: InetSkEntry), log: Log) throws {
        let owner = "TCP connection \(c.conn) (not yet accepted at the dump)"
        guard let mine = images.tcpStreams[c.entry.ino], let theirs = images.tcpStreams[c.pending.ino] else {
            throw CheckpointError(.image, "\(owner): tcp-stream image missing")
        }
        guard mine.inq.isEmpty, c.entry.state == SocketState.established || c.entry.state == 5 /* FIN_WAIT2 */ else {
            throw CheckpointError(.image, "\(owner): a client in state \(c.entry.state) with \(mine.inq.count) bytes received cannot be connected again")
        }
        try lock.unlock(c.conn)
        let addr = InetAddress(family: Int32(c.entry.family), words: c.entry.dstAddr, port: c.entry.dstPort).sockaddr
        let r = addr.withUnsafeBytes { Glibc.connect(c.fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(addr.count)) }
        if r != 0 && errno != EINPROGRESS { throw CheckpointError.errno("\(owner): connect") }
        let data = theirs.inq + mine.outq
        var off = 0
        let deadline = Date().addingTimeInterval(10)
        while off < data.count || r != 0 && off == 0 && data.isEmpty {
            var p = pollfd(fd: c.fd, events: Int16(POLLOUT), revents: 0)
            guard Date() < deadline, poll(&p, 1, 100) >= 0 else { throw CheckpointError(.kernel, "\(owner): \(off) of \(data.count) bytes sent in 10 s") }
            if p.revents & Int16(POLLOUT) == 0 { continue }
            if data.isEmpty { break }
            let n = data[off...].withUnsafeBytes { Glibc.send(c.fd, $0.baseAddress, data.count - off, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            if n < 0 && errno != EAGAIN { throw CheckpointError.errno("\(owner): send the queued bytes") }
            if n > 0 { off += n }
        }
        if c.entry.state == 5, Glibc.shutdown(c.fd, Int32(SHUT_WR)) != 0 { throw CheckpointError.errno("\(owner): shutdown") }
        log.info("\(owner): connected again, \(data.count) bytes queued")
    }
}
