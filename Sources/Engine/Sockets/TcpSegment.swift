import Foundation
import LinuxKernel

/// A TCP segment forged as if the peer had sent it, for the one step of a restore that
/// repair mode cannot do: put the peer's FIN into a socket's receive side (CLOSE_WAIT,
/// LAST_ACK, CLOSING), or acknowledge our own FIN (FIN_WAIT2), as soccr's send_fin does.
/// It goes out on a raw socket carrying CRIU's mark, which the network lock lets through.
struct TcpSegment {
    static let fin: UInt8 = 0x01, ack: UInt8 = 0x10
    /// SOCCR_MARK: packets the lock must not drop.
    static let mark: Int32 = 0xC114

    /// From the peer to us, as the packets carry the addresses (IPv4-mapped as IPv4).
    let from: InetAddress
    let to: InetAddress

    init(peer: InetAddress, local: InetAddress) {
        from = peer.onTheWire
        to = local.onTheWire
    }

    /// Sends the segment from a raw socket made in the network namespace of `netnsPid`
    /// (ours when nil).
    func send(flags: UInt8, seq: UInt32, ack: UInt32, window: UInt16, netnsPid: Int32?, owner: String) throws {
        let packet = ipHeader(payload: 20) + tcpHeader(flags: flags, seq: seq, ack: ack, window: window)
        let make = { () throws -> Int32 in
            let fd = socket(self.to.family, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_RAW))
            if fd < 0 { throw CheckpointError.errno("\(owner): raw socket for a forged \(self.what(flags))") }
            return fd
        }
        let fd = try netnsPid.map { try NamespaceJoin.run(in: $0, [.net], make) } ?? make()
        defer { close(fd) }
        try SocketOption(fd: fd, owner: owner).set(SocketOption.solSocket, SocketOption.soMark, Self.mark, "SO_MARK")
        var dst = to.sockaddr
        dst[2] = 0; dst[3] = 0
        let n = packet.withUnsafeBytes { p in
            dst.withUnsafeBytes { sendto(fd, p.baseAddress, packet.count, 0, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(dst.count)) }
        }
        if n != packet.count { throw CheckpointError.errno("\(owner): send a forged \(what(flags)) from the peer") }
    }

    private func what(_ flags: UInt8) -> String { flags & Self.fin != 0 ? "FIN" : "ACK" }

    /// IPv4 (the kernel fills in the checksum and id) or IPv6, TCP inside.
    private func ipHeader(payload: Int) -> [UInt8] {
        if to.family == AF_INET6 {
            return [0x60, 0, 0, 0] + be16(UInt16(payload)) + [UInt8(IPPROTO_TCP), 64] + from.addressBytes + to.addressBytes
        }
        return [0x45, 0] + be16(UInt16(20 + payload)) + [0, 0, 0x40, 0, 64, UInt8(IPPROTO_TCP), 0, 0]
            + from.addressBytes + to.addressBytes
    }

    private func tcpHeader(flags: UInt8, seq: UInt32, ack: UInt32, window: UInt16) -> [UInt8] {
        var h = be16(UInt16(from.port)) + be16(UInt16(to.port)) + be32(seq) + be32(ack)
            + [5 << 4, flags] + be16(window) + [0, 0, 0, 0]
        let pseudo = from.addressBytes + to.addressBytes
            + (to.family == AF_INET6 ? be32(UInt32(h.count)) + [0, 0, 0, UInt8(IPPROTO_TCP)] : [0, UInt8(IPPROTO_TCP)] + be16(UInt16(h.count)))
        let sum = Self.checksum(pseudo + h)
        h[16] = UInt8(sum >> 8); h[17] = UInt8(sum & 0xff)
        return h
    }

    /// The Internet checksum (RFC 1071) of an even number of bytes.
    static func checksum(_ b: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        for i in stride(from: 0, to: b.count, by: 2) { sum += UInt32(b[i]) << 8 | UInt32(b[i + 1]) }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }

    private func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    private func be32(_ v: UInt32) -> [UInt8] { be16(UInt16(v >> 16)) + be16(UInt16(v & 0xffff)) }
}
