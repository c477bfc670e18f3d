import Foundation

/// A TCP or UDP socket as INET_DIAG reports it (through SockDiag): the bound, listening
/// or connected ones the kernel has in its hash tables.
public struct InetDiag {
    public let family: UInt8
    public let state: UInt8
    public let inode: UInt32
    /// Listening sockets: the connections waiting for accept(); others: unread bytes.
    public let rqueue: UInt32
    /// Listening sockets: the backlog; others: unsent or unacknowledged bytes.
    public let wqueue: UInt32
    /// sk_shutdown: bit 0 receive side, bit 1 send side.
    public let shutdown: UInt8?
    /// The peer's address (16 bytes, IPv4 in the first 4) and port: a connection not yet
    /// made (SYN_SENT) has them though getpeername(2) says ENOTCONN.
    public let peer: [UInt8]
    public let peerPort: UInt16
    public let local: [UInt8]
    public let localPort: UInt16

    public static let attrShutdown: UInt16 = 8

    /// Every socket of `family`/`proto` in the network namespace of `pid`, by inode.
    public static func sockets(family: Int32, proto: Int32, inNetnsOf pid: Int32) throws -> [UInt32: InetDiag] {
        var out: [UInt32: InetDiag] = [:]
        for s in try all(family: family, proto: proto, inNetnsOf: pid) { out[s.inode] = s }
        return out
    }

    /// Every socket, those without a file too (inode 0: connections not yet accepted).
    public static func all(family: Int32, proto: Int32, inNetnsOf pid: Int32) throws -> [InetDiag] {
        // inet_diag_req_v2: family, protocol, no extensions, every state, any socket id.
        var req: [UInt8] = [UInt8(family), UInt8(proto), 0, 0]
        SockDiag.append32(&req, ~0)
        req += [UInt8](repeating: 0, count: 48)
        // inet_diag_msg: family, state, timer, retrans, sockid (sport, dport, src, dst,
        // if, cookie), expires, rqueue, wqueue, uid, inode.
        return try SockDiag.dump(request: req, headerSize: 72, netnsOf: pid).map { m in
            InetDiag(family: m.u8(0), state: m.u8(1), inode: m.u32(68), rqueue: m.u32(56), wqueue: m.u32(60),
                     shutdown: m.attributes[attrShutdown]?.first,
                     peer: (24..<40).map { m.u8($0) }, peerPort: UInt16(m.u8(6)) << 8 | UInt16(m.u8(7)),
                     local: (8..<24).map { m.u8($0) }, localPort: UInt16(m.u8(4)) << 8 | UInt16(m.u8(5)))
        }
    }
}
