import Foundation
import CShim

/// One socket as sock_diag(7) reports it: the family's fixed message (unix_diag_msg,
/// inet_diag_msg, ...) and its netlink attributes by type.
public struct SockDiagMessage {
    public let header: [UInt8]
    public let attributes: [UInt16: [UInt8]]

    public func u8(_ offset: Int) -> UInt8 { header[offset] }
    public func u32(_ offset: Int) -> UInt32 { Self.u32(header, offset) }
    public func attributeU32(_ type: UInt16) -> UInt32? { attributes[type].flatMap { $0.count >= 4 ? Self.u32($0, 0) : nil } }

    public static func u32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }
}

/// NETLINK_SOCK_DIAG dumps (SOCK_DIAG_BY_FAMILY), for any family: the caller gives the
/// family's request body (unix_diag_req, inet_diag_req_v2) and the size of its reply
/// header. The dump lists the sockets of the network namespace the netlink socket lives
/// in, so `netnsOf` names a task whose namespace is asked (nil: our own).
public enum SockDiag {
    public static let netlinkSockDiag: Int32 = 4
    public static let byFamily: UInt16 = 20
    public static let nlmsgDone: UInt16 = 3, nlmsgError: UInt16 = 2

    public static func dump(request body: [UInt8], headerSize: Int, netnsOf pid: Int32? = nil) throws -> [SockDiagMessage] {
        let what = "sock_diag of family \(body.first ?? 0) protocol \(body.count > 1 ? body[1] : 0)"
            + (pid.map { " (net namespace of pid \($0))" } ?? "")
        let open = { () throws -> Int32 in
            let fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), netlinkSockDiag)
            if fd < 0 { throw CheckpointError.errno("socket(NETLINK_SOCK_DIAG) for \(what)") }
            return fd
        }
        let fd = try pid.map { p in try NamespaceJoin.run(in: p, [.net], open) } ?? open()
        defer { close(fd) }
        var msg = [UInt8]()
        append32(&msg, UInt32(16 + body.count))
        append16(&msg, byFamily)
        append16(&msg, 0x301)          // NLM_F_REQUEST | NLM_F_DUMP
        append32(&msg, 1)              // sequence
        append32(&msg, 0)              // port: the kernel
        msg += body
        // Unaddressed, a netlink socket sends to the kernel.
        let sent = send(fd, msg, msg.count, 0)
        if sent != msg.count { throw CheckpointError.errno("send the request for \(what)") }

        var out: [SockDiagMessage] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try Syscall.retrying("receive \(what)") { recv(fd, &buf, buf.count, 0) }
            var off = 0
            while off + 16 <= n {
                let len = Int(SockDiagMessage.u32(buf, off))
                let type = UInt16(buf[off + 4]) | UInt16(buf[off + 5]) << 8
                guard len >= 16, off + len <= n else { throw CheckpointError(.kernel, "\(what): malformed reply (\(len) bytes at \(off) of \(n))") }
                if type == nlmsgDone { return out }
                if type == nlmsgError {
                    // An error of 0 is an acknowledgement: the dump is complete.
                    let err = Int32(bitPattern: SockDiagMessage.u32(buf, off + 16))
                    if err == 0 { return out }
                    throw CheckpointError.errno(what, -err)
                }
                let payload = Array(buf[(off + 16)..<(off + len)])
                if type == byFamily && payload.count >= headerSize { out.append(message(payload, headerSize)) }
                off += (len + 3) & ~3
            }
            if n == 0 { return out }
        }
    }

    private static func message(_ p: [UInt8], _ headerSize: Int) -> SockDiagMessage {
        var attrs: [UInt16: [UInt8]] = [:]
        var off = (headerSize + 3) & ~3
        while off + 4 <= p.count {
            let len = Int(UInt16(p[off]) | UInt16(p[off + 1]) << 8)
            let type = (UInt16(p[off + 2]) | UInt16(p[off + 3]) << 8) & 0x3fff
            guard len >= 4, off + len <= p.count else { break }
            attrs[type] = Array(p[(off + 4)..<(off + len)])
            off += (len + 3) & ~3
        }
        return SockDiagMessage(header: Array(p[0..<headerSize]), attributes: attrs)
    }

    public static func append16(_ b: inout [UInt8], _ v: UInt16) { b += [UInt8(v & 0xff), UInt8(v >> 8)] }
    public static func append32(_ b: inout [UInt8], _ v: UInt32) { b += (0..<4).map { UInt8((v >> ($0 * 8)) & 0xff) } }
}

/// A UNIX socket as UNIX_DIAG reports it.
public struct UnixDiag {
    public let ino: UInt32
    public let type: UInt8          // SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5
    public let state: UInt8         // TCP_ESTABLISHED 1, TCP_CLOSE 7, TCP_LISTEN 10
    public let name: [UInt8]?       // sun_path bytes; an abstract name starts with 0
    public let vfs: (ino: UInt32, dev: UInt32)?
    public let peer: UInt32
    /// A listener's not yet accepted connections, as the inodes of their client sockets.
    public let icons: [UInt32]
    public let rqueue: UInt32, wqueue: UInt32
    public let shutdown: UInt8

    public static let showName: UInt32 = 1, showVFS: UInt32 = 2, showPeer: UInt32 = 4, showIcons: UInt32 = 8, showRQLen: UInt32 = 0x10

    /// Every UNIX socket of the network namespace of `pid` (nil: ours), by inode.
    public static func all(netnsOf pid: Int32? = nil) throws -> [UInt32: UnixDiag] {
        var req: [UInt8] = [UInt8(AF_UNIX), 0, 0, 0]
        SockDiag.append32(&req, ~0)            // every state
        SockDiag.append32(&req, 0)             // any inode
        SockDiag.append32(&req, showName | showVFS | showPeer | showIcons | showRQLen | 0x40 /* UID */)
        SockDiag.append32(&req, ~0); SockDiag.append32(&req, ~0)  // no cookie
        var out: [UInt32: UnixDiag] = [:]
        for m in try SockDiag.dump(request: req, headerSize: 16, netnsOf: pid) {
            let ino = m.u32(4)
            let vfs = m.attributes[1].flatMap { $0.count >= 8 ? (SockDiagMessage.u32($0, 0), SockDiagMessage.u32($0, 4)) : nil }
            let icons = m.attributes[3].map { a in stride(from: 0, to: a.count - 3, by: 4).map { SockDiagMessage.u32(a, $0) } } ?? []
            let rq = m.attributes[4] ?? []
            out[ino] = UnixDiag(ino: ino, type: m.u8(1), state: m.u8(2), name: m.attributes[0], vfs: vfs,
                                peer: m.attributeU32(2) ?? 0, icons: icons,
                                rqueue: rq.count >= 8 ? SockDiagMessage.u32(rq, 0) : 0,
                                wqueue: rq.count >= 8 ? SockDiagMessage.u32(rq, 4) : 0,
                                shutdown: m.attributes[6]?.first ?? 0)
        }
        return out
    }
}
