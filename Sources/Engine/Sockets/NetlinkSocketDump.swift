import Foundation
import LinuxKernel
import CShim
import Images

/// Netlink sockets as CRIU's netlink_sk_entry in files.img: protocol, port id, groups
/// (all of them, 32 to a word, where CRIU stops at 32), the connected peer, from
/// NETLINK_DIAG of the tree's network namespace. The NETLINK_* options CRIU's image has no
/// field for ride in the high byte of the file flags, which F_SETFL ignores (as eventfd's
/// EFD_SEMAPHORE rides in bit 0), and so does SOCK_DGRAM (CRIU makes every one SOCK_RAW). A socket with messages waiting is refused, as CRIU
/// does: a message can only be queued again by sending it, and then its sender is the
/// restorer's port, not the kernel (port 0) that sent it.
final class NetlinkSocketDump {
    static let solNetlink: Int32 = 270
    /// NETLINK_PKTINFO, BROADCAST_ERROR, NO_ENOBUFS, LISTEN_ALL_NSID, CAP_ACK, EXT_ACK,
    /// GET_STRICT_CHK, by their bit in the flags' high byte.
    static let options: [(option: Int32, name: String, bit: UInt32)] = [
        (3, "NETLINK_PKTINFO", 1 << 24), (4, "NETLINK_BROADCAST_ERROR", 1 << 25), (5, "NETLINK_NO_ENOBUFS", 1 << 26),
        (8, "NETLINK_LISTEN_ALL_NSID", 1 << 27), (10, "NETLINK_CAP_ACK", 1 << 28), (11, "NETLINK_EXT_ACK", 1 << 29),
        (12, "NETLINK_GET_STRICT_CHK", 1 << 30),
    ]
    static let datagram: UInt32 = 1 << 31
    private var table: [UInt32: SockDiagMessage]?

    /// The entry for socket `ino` behind `pid`'s `fd`; nil when it is not a netlink socket.
    func entry(pid: Int32, fd: Int32, ino: UInt32, id: UInt32, flags: UInt32) throws -> NetlinkSkEntry? {
        let place = "pid \(pid) fd \(fd)"
        let sock = try Syscall.takeFd(pid: pid, fd: fd)
        defer { close(sock) }
        let s = SocketOption(fd: sock, owner: "\(place) (netlink socket)")
        guard try s.int(SocketOption.solSocket, SocketOption.soDomain, "SO_DOMAIN") == AF_NETLINK else { return nil }
        var e = NetlinkSkEntry()
        e.id = id; e.ino = ino; e.fown = FownEntry.none
        e.protocol = UInt32(bitPattern: try s.int(SocketOption.solSocket, SocketOption.soProtocol, "SO_PROTOCOL"))
        let type = try s.int(SocketOption.solSocket, SocketOption.soType, "SO_TYPE")
        guard type == Int32(SOCK_RAW.rawValue) || type == Int32(SOCK_DGRAM.rawValue) else {
            throw CheckpointError(.unsupported, "\(place): netlink socket (inode \(ino)) of type \(type) cannot be dumped")
        }
        var waiting = pollfd(fd: sock, events: Int16(POLLIN), revents: 0)
        if poll(&waiting, 1, 0) == 1 {
            throw CheckpointError(.unsupported, "\(place): netlink socket (inode \(ino), protocol \(e.protocol)) has messages waiting to be read, which cannot be dumped: netlink gives no way to queue a message again as sent by the kernel")
        }
        var len = socklen_t(0)
        if getsockopt(sock, SocketOption.solSocket, SocketOption.soGetFilter, nil, &len) == 0 && len > 0 {
            throw CheckpointError(.unsupported, "\(place): netlink socket (inode \(ino)) has a BPF filter attached (SO_ATTACH_FILTER), which cannot be dumped yet")
        }
        e.flags = flags | (type == Int32(SOCK_DGRAM.rawValue) ? Self.datagram : 0)
        for o in Self.options where try s.optionalInt(Self.solNetlink, o.option, o.name).map({ $0 != 0 }) ?? false {
            e.flags |= o.bit
        }
        e.opts = try SkOptsEntry.read(s)
        if table == nil { table = try Self.diagnose(netnsOf: pid) }
        // Not listed: neither bound nor connected.
        guard let m = table?[ino] else { e.state = 0; e.portid = 0; e.dstPortid = 0; e.dstGroup = 0; return e }
        e.state = UInt32(m.u8(3)); e.portid = m.u32(4); e.dstPortid = m.u32(8); e.dstGroup = m.u32(12)
        if let g = m.attributes[Self.diagGroups] {
            var words = stride(from: 0, to: g.count - 3, by: 4).map { SockDiagMessage.u32(g, $0) }
            while words.last == 0 { words.removeLast() }
            e.groups = words
        }
        return e
    }

    static let diagGroups: UInt16 = 1

    /// Every netlink socket of the network namespace of `pid` that is bound or connected, by inode.
    private static func diagnose(netnsOf pid: Int32) throws -> [UInt32: SockDiagMessage] {
        var req: [UInt8] = [UInt8(AF_NETLINK), 255 /* NDIAG_PROTO_ALL */, 0, 0]
        SockDiag.append32(&req, 0)       // any inode
        SockDiag.append32(&req, 0x2)     // NDIAG_SHOW_GROUPS
        SockDiag.append32(&req, ~0); SockDiag.append32(&req, ~0)
        var out: [UInt32: SockDiagMessage] = [:]
        for m in try SockDiag.dump(request: req, headerSize: 28, netnsOf: pid) { out[m.u32(16)] = m }
        return out
    }
}
