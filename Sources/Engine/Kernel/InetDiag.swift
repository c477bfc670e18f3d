import Foundation
import CShim

/// What sock_diag (NETLINK_SOCK_DIAG, INET_DIAG) tells about one TCP or UDP socket that
/// the kernel has in its hash tables: bound, listening or connected ones.
struct InetDiagSocket {
    let family: UInt8
    let state: UInt8
    let inode: UInt32
    /// Listening sockets: the connections waiting for accept(); others: unread bytes.
    let rqueue: UInt32
    /// Listening sockets: the backlog; others: unsent or unacknowledged bytes.
    let wqueue: UInt32
    /// sk_shutdown: bit 0 receive side, bit 1 send side.
    let shutdown: UInt8?
}

/// A minimal sock_diag client for inet sockets: one dump request per family and protocol,
/// made from a netlink socket of the network namespace the sockets live in.
enum InetDiag {
    static let sockDiagByFamily: UInt16 = 20
    static let netlinkSockDiag: Int32 = 4
    static let attrShutdown: UInt16 = 8

    /// Every socket of `family`/`proto` in the network namespace of `pid`, by inode.
    static func sockets(family: Int32, proto: Int32, inNetnsOf pid: Int32) throws -> [UInt32: InetDiagSocket] {
        let nl = try NamespaceJoin.run(in: pid, ["net"]) { () -> Int32 in
            let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), netlinkSockDiag)
            if fd < 0 { throw CheckpointError.errno("sock_diag socket in the net namespace of pid \(pid)") }
            return fd
        }
        defer { close(nl) }
        try send(nl, family: family, proto: proto)
        return try receive(nl, what: "sock_diag of family \(family) protocol \(proto) (net namespace of pid \(pid))")
    }

    private static func send(_ nl: Int32, family: Int32, proto: Int32) throws {
        // nlmsghdr (16) + inet_diag_req_v2 (56): every state, no extensions.
        var msg = [UInt8](repeating: 0, count: 72)
        func put<T>(_ v: T, _ at: Int) { withUnsafeBytes(of: v) { msg.replaceSubrange(at..<at + $0.count, with: $0) } }
        put(UInt32(72), 0)
        put(sockDiagByFamily, 4)
        put(UInt16(0x1 | 0x300), 6)  // NLM_F_REQUEST | NLM_F_DUMP
        put(UInt32(1), 8)
        msg[16] = UInt8(family)
        msg[17] = UInt8(proto)
        put(UInt32(0xffff_ffff), 20)  // idiag_states
        // No address: a netlink message without one goes to the kernel.
        let n = msg.withUnsafeBytes { Glibc.send(nl, $0.baseAddress, $0.count, 0) }
        if n != msg.count { throw CheckpointError.errno("send sock_diag request") }
    }

    private static func receive(_ nl: Int32, what: String) throws -> [UInt32: InetDiagSocket] {
        var out: [UInt32: InetDiagSocket] = [:]
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(nl, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw CheckpointError.errno("receive \(what)") }
            var off = 0
            while off + 16 <= n {
                let len = Int(buf.load(UInt32.self, at: off))
                let type = buf.load(UInt16.self, at: off + 4)
                guard len >= 16, off + len <= n else { throw CheckpointError(.kernel, "\(what): malformed netlink message") }
                if type == 3 /* NLMSG_DONE */ { return out }
                if type == 2 /* NLMSG_ERROR */ {
                    let err = -buf.load(Int32.self, at: off + 16)
                    if err == 0 { return out }
                    throw CheckpointError.errno(what, err)
                }
                if type == sockDiagByFamily && len >= 16 + 72 {
                    let s = parse(buf, at: off + 16, end: off + len)
                    out[s.inode] = s
                }
                off += (len + 3) & ~3
            }
        }
    }

    /// inet_diag_msg: family, state, timer, retrans, sockid (48), expires, rqueue, wqueue,
    /// uid, inode; then rtattrs.
    private static func parse(_ b: [UInt8], at m: Int, end: Int) -> InetDiagSocket {
        var shutdown: UInt8?
        var a = m + 72
        while a + 4 <= end {
            let alen = Int(b.load(UInt16.self, at: a)), atype = b.load(UInt16.self, at: a + 2)
            if alen < 4 { break }
            if atype == attrShutdown && alen >= 5 { shutdown = b[a + 4] }
            a += (alen + 3) & ~3
        }
        return InetDiagSocket(family: b[m], state: b[m + 1], inode: b.load(UInt32.self, at: m + 68),
                              rqueue: b.load(UInt32.self, at: m + 56), wqueue: b.load(UInt32.self, at: m + 60),
                              shutdown: shutdown)
    }
}

fileprivate extension Array where Element == UInt8 {
    func load<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }
}
