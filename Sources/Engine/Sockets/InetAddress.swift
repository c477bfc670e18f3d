import Foundation
import LinuxKernel
import Images

/// An IPv4 or IPv6 address and port as inet_sk_entry holds them: the address bytes in
/// network order packed into u32 words (1 for IPv4, 4 for IPv6), the port in host order.
struct InetAddress {
    let family: Int32
    let words: [UInt32]
    let port: UInt32

    static func unspecified(_ family: Int32) -> InetAddress {
        InetAddress(family: family, words: [UInt32](repeating: 0, count: family == AF_INET6 ? 4 : 1), port: 0)
    }

    /// From a sockaddr_in/sockaddr_in6 as getsockname(2) fills it.
    init(sockaddr b: [UInt8], family: Int32) {
        self.family = family
        port = UInt32(UInt16(b[2]) << 8 | UInt16(b[3]))
        let (off, n) = family == AF_INET6 ? (8, 4) : (4, 1)
        words = (0..<n).map { i in b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off + 4 * i, as: UInt32.self) } }
    }

    init(family: Int32, words: [UInt32], port: UInt32) {
        self.family = family
        self.words = words
        self.port = port
    }

    var addressBytes: [UInt8] { words.flatMap { bytes($0) } }

    /// ::ffff:a.b.c.d, which carries IPv4 packets on an IPv6 socket.
    var isV4Mapped: Bool { family == AF_INET6 && words[0] == 0 && words[1] == 0 && words[2] == UInt32(0xffff).bigEndian }

    var text: String {
        var out = [CChar](repeating: 0, count: 64)
        let b = addressBytes
        _ = inet_ntop(family, b, &out, socklen_t(out.count))
        return String(cString: out)
    }

    /// The address as the packets carry it: an IPv4-mapped one as plain IPv4.
    var onTheWire: InetAddress {
        isV4Mapped ? InetAddress(family: AF_INET, words: [words[3]], port: port) : self
    }

    var sockaddr: [UInt8] {
        var b = [UInt8](repeating: 0, count: family == AF_INET6 ? 28 : 16)
        b.replaceSubrange(0..<2, with: bytes(UInt16(family)))
        b[2] = UInt8(port >> 8); b[3] = UInt8(port & 0xff)
        let off = family == AF_INET6 ? 8 : 4
        b.replaceSubrange(off..<off + addressBytes.count, with: addressBytes)
        return b
    }
}

extension TcpConnection {
    init(local: InetAddress, peer: InetAddress) {
        let l = local.onTheWire, p = peer.onTheWire
        self.init(family: l.family, local: l.text, localPort: l.port, peer: p.text, peerPort: p.port)
    }
}
