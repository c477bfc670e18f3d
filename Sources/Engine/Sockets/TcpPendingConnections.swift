import Foundation
import LinuxKernel
import Images

/// Connections a listener holds that no one has accepted yet, with the bytes their
/// clients already sent. No call reads a queued connection in place, so a dump that ends
/// the tree takes them off the listener with accept(2) (CRIU refuses them instead), reads
/// each one in repair mode and closes it silently; files.img gets an inet_sk_entry for
/// each that no fd names, and tcp-stream-INO.img its queue. The restore makes them again
/// by a real connect of their client (which must be in the tree) once the listener is
/// back, and sends the queued bytes through it: accept then read return them as before.
final class TcpPendingConnections {
    private(set) var entries: [(entry: InetSkEntry, stream: TcpRepairState)] = []
    private var fds: [Int32] = []

    /// Accepts `count` connections from our own fd on the listener.
    func take(from listener: Int32, count: UInt32, owner: String, log: Log) throws {
        for _ in 0..<count {
            var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 0) == 1 else { break }
            let fd = accept(listener, nil, nil)
            if fd < 0 { throw CheckpointError.errno("\(owner): take a connection not yet accepted off the listener") }
            fds.append(fd)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let s = SocketOption(fd: fd, owner: "\(owner) (connection not yet accepted)")
            var e = InetSkEntry()
            var st = stat()
            if fstat(fd, &st) != 0 { throw CheckpointError.errno("\(s.owner): fstat") }
            let family = try s.int(SocketOption.solSocket, SocketOption.soDomain, "SO_DOMAIN")
            e.ino = UInt32(truncatingIfNeeded: st.st_ino)
            e.family = UInt32(family); e.type = UInt32(SOCK_STREAM.rawValue); e.proto = UInt32(IPPROTO_TCP)
            e.flags = UInt32(O_RDWR); e.fown = FownEntry.none; e.backlog = 0
            let local = try InetSocketDump.name(fd, family: family, peer: false, s.owner)
            let peer = try InetSocketDump.name(fd, family: family, peer: true, s.owner)
            e.srcAddr = local.words; e.srcPort = local.port
            e.dstAddr = peer.words; e.dstPort = peer.port
            e.state = UInt32(try s.bytes(SocketOption.solTCP, SocketOption.tcpInfo, 8, "TCP_INFO")[0])
            e.opts = try SkOptsEntry.read(s, tcp: true)
            if family == AF_INET6 { e.v6Only = try s.bool(SocketOption.solIPv6, SocketOption.ipv6V6only, "IPV6_V6ONLY") }
            let conn = TcpConnection(local: local, peer: peer)
            guard e.state == SocketState.established || e.state == 8 /* CLOSE_WAIT */ else {
                throw CheckpointError(.unsupported, "\(s.owner): TCP connection \(conn) is in state \(SocketState.names[e.state] ?? "\(e.state)"), which cannot be dumped")
            }
            try s.set(SocketOption.solTCP, SocketOption.tcpRepair, 1, "TCP_REPAIR")
            let stream = try TcpRepairState.read(fd, state: e.state, owner: "\(s.owner) \(conn)")
            guard stream.outq.isEmpty else {
                throw CheckpointError(.unsupported, "\(s.owner): TCP connection \(conn) has \(stream.outq.count) bytes to send, which no one could have written")
            }
            entries.append((e, stream))
            log.info("\(owner): connection \(conn) not yet accepted, \(stream.inq.count) bytes queued: taken off the listener")
        }
    }

    /// Gives each connection its files.img id.
    func fileEntries(newID: () -> UInt32) -> [FileEntry] {
        entries.indices.map { i in
            entries[i].entry.id = newID()
            var f = FileEntry()
            f.id = entries[i].entry.id
            f.type = .inetsk
            f.isk = entries[i].entry
            return f
        }
    }

    /// They close in repair mode: their clients see nothing.
    func close() {
        for fd in fds { Glibc.close(fd) }
        fds = []
    }
}
