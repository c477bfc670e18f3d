import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

/// TCP and UDP sockets, IPv4 and IPv6, of the dumped tree: one inet_sk_entry per socket
/// (file_entry.isk in files.img, as CRIU writes it) and, for an established connection,
/// tcp-stream-INO.img with its sequence numbers, options and both queues, read through the
/// kernel's TCP repair mode. The socket itself is taken into our process with
/// pidfd_getfd(2), so every option is read with getsockopt from outside the task.
final class InetSocketDump {
    let allowEstablished: Bool
    let log: Log
    private(set) var streams: [(ino: UInt32, entry: TcpStreamEntry, inq: Data, outq: Data)] = []
    /// Established connections we hold in repair mode behind a network lock.
    private(set) var repaired: [RepairedConnection] = []
    private var diag: [String: [UInt32: InetDiag]] = [:]
    /// A dump that ends the tree takes connections not yet accepted off their listeners.
    var takesPending = false
    /// CRIU's --skip-in-flight: connections not yet accepted are left out.
    var skipInFlight = false
    /// CRIU's --tcp-close: connections go without their state and are not locked.
    var tcpClose = false
    var lockMethod = NetworkLockMethod.iptables
    let pending = TcpPendingConnections()
    /// Listeners whose queued connections are taken once every socket of the tree is known.
    private var pendingListeners: [(fd: Int32, count: UInt32, owner: String, local: InetAddress, pid: Int32, proto: Int32)] = []
    /// Every dumped TCP connection, as TcpConnection describes it.
    private var dumped: Set<String> = []

    init(allowEstablished: Bool, log: Log) {
        self.allowEstablished = allowEstablished
        self.log = log
    }

    /// The socket behind `pid`'s `fd` as an image entry; nil when it is no inet socket.
    func entry(pid: Int32, fd: Int32, id: UInt32, flags: UInt32, inode: UInt64) throws -> InetSkEntry? {
        let owner = "pid \(pid) fd \(fd)"
        let ours = try Syscall.takeFd(pid: pid, fd: fd)
        var keep = false
        defer { if !keep { close(ours) } }
        let s = SocketOption(fd: ours, owner: owner)
        let family = try s.int(SocketOption.solSocket, SocketOption.soDomain, "SO_DOMAIN")
        guard family == AF_INET || family == AF_INET6 else { return nil }
        let type = try s.int(SocketOption.solSocket, SocketOption.soType, "SO_TYPE")
        let proto = try s.int(SocketOption.solSocket, SocketOption.soProtocol, "SO_PROTOCOL")
        let tcp = type == Int32(SOCK_STREAM.rawValue) && proto == Int32(IPPROTO_TCP)
        let udp = type == Int32(SOCK_DGRAM.rawValue) && (proto == Int32(IPPROTO_UDP) || proto == 136 /* UDPLITE */)
        let raw = type == Int32(SOCK_RAW.rawValue)
        // ICMP echo ("ping") sockets: datagrams whose port is the echo identifier.
        let ping = type == Int32(SOCK_DGRAM.rawValue) && proto == (family == AF_INET6 ? Int32(IPPROTO_ICMPV6) : Int32(IPPROTO_ICMP))
        guard tcp || udp || raw || ping else {
            throw CheckpointError(.unsupported, "\(owner): inet socket of type \(type), protocol \(proto) is not supported (TCP, UDP, UDP-lite, ICMP echo and raw)")
        }
        var e = InetSkEntry()
        e.id = id; e.ino = UInt32(truncatingIfNeeded: inode)
        e.family = UInt32(family); e.type = UInt32(type); e.proto = UInt32(proto)
        e.flags = flags; e.fown = FownEntry.none
        let local = try Self.name(ours, family: family, peer: false, owner)
        var peer = try Self.name(ours, family: family, peer: true, owner)
        if raw, let words = Self.rawPeer(pid: pid, family: family, inode: inode) { peer = InetAddress(family: family, words: words, port: 0) }
        let known = raw || ping ? nil : try diagnosed(pid: pid, family: family, proto: proto)[e.ino]
        if tcp, peer.port == 0, let k = known, k.state == UInt8(FinState.synSent), k.peerPort != 0 {
            peer = InetAddress(sockaddr: [0, 0, UInt8(k.peerPort >> 8), UInt8(k.peerPort & 0xff)] + (family == AF_INET6 ? [0, 0, 0, 0] : []) + k.peer, family: family)
        }
        e.srcAddr = local.words; e.srcPort = local.port
        e.dstAddr = peer.words; e.dstPort = peer.port
        e.state = tcp ? UInt32(try s.bytes(SocketOption.solTCP, SocketOption.tcpInfo, 8, "TCP_INFO")[0])
                      : UInt32(known?.state ?? UInt8(peer.port != 0 || raw && peer.words.contains { $0 != 0 } ? SocketState.established : SocketState.close))
        e.backlog = e.state == SocketState.listen ? known?.wqueue ?? 0 : 0
        e.opts = try SkOptsEntry.read(s, tcp: tcp)
        if family == AF_INET6 { e.v6Only = try s.bool(SocketOption.solIPv6, SocketOption.ipv6V6only, "IPV6_V6ONLY") }
        e.ipOpts = try IpOptsEntry.read(s, family: family, type: type, proto: proto)
        if !tcp { e.ipOpts.mcGroups = try InetMulticast.memberships(s, family: family, pid: pid) }
        let conn = TcpConnection(local: local, peer: peer)
        if tcp && peer.port != 0 { dumped.insert(conn.description) }
        if tcp {
            var t = TcpOptsEntry()
            t.nodelay = try s.bool(SocketOption.solTCP, SocketOption.tcpNodelay, "TCP_NODELAY")
            t.cork = try s.bool(SocketOption.solTCP, SocketOption.tcpCork, "TCP_CORK")
            e.tcpOpts = t
            switch e.state {
            case SocketState.close:
                if let sd = try closedConnection(ours, conn: conn, owner: owner) { e.shutdown = sd }
            case SocketState.listen:
                if let count = known?.rqueue, count > 0 {
                    let listener = "TCP listener \(TcpConnection.endpoint(local.onTheWire.text, local.port, local.onTheWire.family))"
                    if skipInFlight {
                        log.warn("\(owner): \(listener): \(count) connections not yet accepted are left out (--skip-in-flight)")
                    } else if !allowEstablished {
                        throw CheckpointError(.unsupported, "\(owner): \(listener) has \(count) connections not yet accepted; dump with --tcp-established (or --skip-in-flight)")
                    } else if !takesPending {
                        throw CheckpointError(.unsupported, "\(owner): \(listener) has \(count) connections not yet accepted, which only a dump that ends the tree can take off it (or dump with --skip-in-flight)")
                    } else {
                        keep = true
                        pendingListeners.append((ours, count, owner, local, pid, proto))
                    }
                }
            case let st where FinState.repairable.contains(st):
                if tcpClose { break }
                guard allowEstablished else {
                    let what = st == SocketState.established ? "established" : "in state \(SocketState.names[st] ?? "\(st)")"
                    throw CheckpointError(.unsupported, "\(owner): TCP connection \(conn) is \(what); dump with --tcp-established")
                }
                keep = true
                try repair(ours, conn: conn, state: st, pid: pid, ino: e.ino, reuseaddr: e.opts.reuseaddr, owner: owner)
            default:
                throw CheckpointError(.unsupported, "\(owner): TCP socket \(conn) is in state \(SocketState.names[e.state] ?? "\(e.state)"), which cannot be dumped")
            }
        } else {
            if let k = known, k.wqueue > 0 {
                throw CheckpointError(.unsupported, "\(owner): UDP socket \(conn) holds \(k.wqueue) bytes not yet sent (corked), which cannot be dumped")
            }
            if let k = known, k.rqueue > 0 { log.warn("\(owner): \(k.rqueue) bytes of unread datagrams are dropped, as CRIU does") }
            if let sd = known?.shutdown, sd != 0 { e.shutdown = SkShutdown(rawValue: Int(sd & 3)) ?? .none }
        }
        log.info("\(owner): \(tcp ? "TCP" : raw ? "raw" : "UDP") socket \(conn), state \(SocketState.names[e.state] ?? "\(e.state)")")
        return e
    }

    /// Locks the connection, puts it into repair mode and reads its state and queues.
    /// A TCP socket in CLOSE state whose receive side is shut (poll's RDHUP) was a
    /// connection, closed or reset: it keeps failing writes (EPIPE) and reading EOF, which
    /// a new socket gets from shutdown(2). An error not yet read (ECONNRESET) cannot be set
    /// again on a socket: refused.
    private func closedConnection(_ fd: Int32, conn: TcpConnection, owner: String) throws -> SkShutdown? {
        let rdhup: Int16 = 0x2000  // POLLRDHUP, which Glibc's module does not export
        var p = pollfd(fd: fd, events: Int16(POLLIN) | rdhup, revents: 0)
        guard poll(&p, 1, 0) == 1 else { return nil }
        if p.revents & Int16(POLLERR) != 0 {
            throw CheckpointError(.unsupported, "\(owner): TCP socket \(conn) was reset and its error is not yet read (SO_ERROR), which no socket call can set again")
        }
        return p.revents & rdhup != 0 ? .both : nil
    }

    private func repair(_ fd: Int32, conn: TcpConnection, state: UInt32, pid: Int32, ino: UInt32, reuseaddr: Bool, owner: String) throws {
        let lock = NetworkLock(netns: Self.foreignNetns(pid), method: lockMethod)
        var r = RepairedConnection(fd: fd, connection: conn, lock: lock, reuseaddr: reuseaddr)
        do {
            try lock.lock(conn)
            r.locked = true
            try SocketOption(fd: fd, owner: owner).set(SocketOption.solTCP, SocketOption.tcpRepair, 1, "TCP_REPAIR")
            r.inRepair = true
        } catch {
            r.release(log: log)
            throw error
        }
        repaired.append(r)
        let stream = try TcpRepairState.read(fd, state: state, owner: "\(owner) (TCP connection \(conn))")
        streams.append((ino, stream.entry, stream.inq, stream.outq))
        log.info("\(owner): TCP connection \(conn) locked and in repair mode: \(stream.inq.count) bytes to read, \(stream.outq.count) to send")
    }

    /// A failed dump, or one that leaves the tree running: every connection leaves repair
    /// mode and its lock, and continues where it was.
    /// The connections queued on the tree's listeners, once every socket is known: each
    /// must come from a client in the tree (the restore connects it again), else nothing
    /// is taken and the dump is refused.
    func pendingEntries(newID: () -> UInt32) throws -> [FileEntry] {
        for l in pendingListeners {
            let listener = "TCP listener \(TcpConnection.endpoint(l.local.onTheWire.text, l.local.port, l.local.onTheWire.family))"
            for d in try InetDiag.all(family: Int32(l.local.family), proto: l.proto, inNetnsOf: l.pid)
            where d.inode == 0 && (d.state == 1 || d.state == 8) && UInt32(d.localPort) == l.local.port {
                let family = Int32(d.family)
                let pad: [UInt8] = family == AF_INET6 ? [0, 0, 0, 0] : []
                let server = InetAddress(sockaddr: [0, 0, UInt8(d.localPort >> 8), UInt8(d.localPort & 0xff)] + pad + d.local, family: family)
                let client = InetAddress(sockaddr: [0, 0, UInt8(d.peerPort >> 8), UInt8(d.peerPort & 0xff)] + pad + d.peer, family: family)
                let seen = TcpConnection(local: client, peer: server)
                guard dumped.contains(seen.description) else {
                    throw CheckpointError(.unsupported, "\(l.owner): \(listener) has a connection not yet accepted from \(TcpConnection.endpoint(seen.local, seen.localPort, seen.family)), outside the dumped tree, which cannot be made again (dump with --skip-in-flight)")
                }
            }
        }
        for l in pendingListeners { try pending.take(from: l.fd, count: l.count, owner: l.owner, log: log) }
        return pending.fileEntries(newID: newID)
    }

    func release() {
        for l in pendingListeners { close(l.fd) }
        pendingListeners = []
        for r in repaired { r.release(log: log) }
        repaired = []
        pending.close()
    }

    /// The tree was killed: the sockets close silently in repair mode (no FIN, no reset)
    /// and the lock stays until the restore removes it.
    func closeKeepingLock() {
        for l in pendingListeners { close(l.fd) }
        pendingListeners = []
        for r in repaired { close(r.fd) }
        repaired = []
        pending.close()
    }

    func write(to images: ImageDirectory) throws {
        for s in streams + pending.entries.map({ ($0.entry.ino, $0.stream.entry, $0.stream.inq, $0.stream.outq) }) {
            let w = try images.writer(.tcpStream(s.ino))
            try w.append(s.entry)
            try w.appendRaw(s.inq)
            try w.appendRaw(s.outq)
            try w.close()
        }
    }

    private func diagnosed(pid: Int32, family: Int32, proto: Int32) throws -> [UInt32: InetDiag] {
        let netns = (try? ProcTree.link("/proc/\(pid)/ns/net")) ?? ""
        let key = "\(netns) \(family) \(proto)"
        if let d = diag[key] { return d }
        let d = try InetDiag.sockets(family: family, proto: proto, inNetnsOf: pid)
        diag[key] = d
        return d
    }

    /// A raw socket's peer (connect(2) of a raw socket): getpeername says ENOTCONN, as it
    /// has no port, so it comes from /proc/PID/net/raw(6), whose rem_address prints the
    /// address words as they sit in memory, as inet_sk_entry holds them.
    static func rawPeer(pid: Int32, family: Int32, inode: UInt64) -> [UInt32]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/net/raw\(family == AF_INET6 ? "6" : "")", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ")
            guard f.count > 9, UInt64(f[9]) == inode, let hex = f[2].split(separator: ":").first else { continue }
            let words = stride(from: 0, to: hex.count, by: 8).compactMap { i in
                UInt32(hex[hex.index(hex.startIndex, offsetBy: i)..<hex.index(hex.startIndex, offsetBy: i + 8)], radix: 16)
            }
            return words.contains { $0 != 0 } ? words : nil
        }
        return nil
    }

    /// /proc/PID/ns/net when it is not our own network namespace.
    static func foreignNetns(_ pid: Int32) -> String? {
        let theirs = try? ProcTree.link("/proc/\(pid)/ns/net"), ours = try? ProcTree.link("/proc/self/ns/net")
        return theirs == ours ? nil : "/proc/\(pid)/ns/net"
    }

    static func name(_ fd: Int32, family: Int32, peer: Bool, _ owner: String) throws -> InetAddress {
        var b = [UInt8](repeating: 0, count: 128)
        var len = socklen_t(b.count)
        let r = b.withUnsafeMutableBytes { p in
            peer ? getpeername(fd, p.baseAddress!.assumingMemoryBound(to: sockaddr.self), &len)
                 : getsockname(fd, p.baseAddress!.assumingMemoryBound(to: sockaddr.self), &len)
        }
        if r != 0 {
            if peer && errno == ENOTCONN { return .unspecified(family) }
            throw CheckpointError.errno("\(owner): \(peer ? "getpeername" : "getsockname")")
        }
        return InetAddress(sockaddr: b, family: family)
    }
}

/// A connection held in repair mode behind its lock during the dump.
struct RepairedConnection {
    let fd: Int32
    let connection: TcpConnection
    let lock: NetworkLock
    let reuseaddr: Bool
    var locked = false
    var inRepair = false

    init(fd: Int32, connection: TcpConnection, lock: NetworkLock, reuseaddr: Bool) {
        self.fd = fd; self.connection = connection; self.lock = lock; self.reuseaddr = reuseaddr
    }

    func release(log: Log) {
        let s = SocketOption(fd: fd, owner: "TCP connection \(connection)")
        if inRepair {
            do {
                try s.set(SocketOption.solTCP, SocketOption.tcpRepair, 0, "TCP_REPAIR")
                // Leaving repair mode resets SO_REUSEADDR.
                try s.set(SocketOption.solSocket, SocketOption.soReuseaddr, reuseaddr ? 1 : 0, "SO_REUSEADDR")
            } catch { log.error("\(error)") }
        }
        if locked { do { try lock.unlock(connection) } catch { log.error("\(error)") } }
        close(fd)
    }
}
