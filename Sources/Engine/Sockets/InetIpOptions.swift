import Foundation
import LinuxKernel
import Images

/// The IP-level options of ip_opts_entry, read from a live inet socket and set on a new
/// one, as CRIU carries them: IP_FREEBIND, IP_TOS/IPV6_TCLASS, IP_TTL/IPV6_UNICAST_HOPS,
/// IP_PKTINFO/IPV6_RECVPKTINFO, and for raw sockets IP_HDRINCL/IPV6_HDRINCL, IP_NODEFRAG
/// and the ICMP type filter (ICMP_FILTER, ICMP6_FILTER).
extension IpOptsEntry {
    typealias O = SocketOption
    static let ipTtl: Int32 = 2, ipHdrincl: Int32 = 3, ipPktinfo: Int32 = 8, ipNodefrag: Int32 = 22
    static let ipv6UnicastHops: Int32 = 16, ipv6Hdrincl: Int32 = 36, ipv6Recvpktinfo: Int32 = 49, ipv6Tclass: Int32 = 67
    static let ipv6Freebind: Int32 = 78
    static let solRaw: Int32 = 255, solIcmpv6: Int32 = 58, icmpFilter: Int32 = 1

    static func read(_ s: SocketOption, family: Int32, type: Int32, proto: Int32) throws -> IpOptsEntry {
        var ip = IpOptsEntry()
        let v6 = family == AF_INET6
        if v6 ? try s.bool(O.solIPv6, ipv6Freebind, "IPV6_FREEBIND") : try s.bool(O.solIP, O.ipFreebind, "IP_FREEBIND") { ip.freebind = true }
        let tos = v6 ? try s.int(O.solIPv6, ipv6Tclass, "IPV6_TCLASS") : try s.int(O.solIP, O.ipTos, "IP_TOS")
        if tos > 0 { ip.tos = UInt32(tos) }
        ip.ttl = UInt32(bitPattern: v6 ? try s.int(O.solIPv6, ipv6UnicastHops, "IPV6_UNICAST_HOPS") : try s.int(O.solIP, ipTtl, "IP_TTL"))
        if v6 ? try s.bool(O.solIPv6, ipv6Recvpktinfo, "IPV6_RECVPKTINFO") : try s.bool(O.solIP, ipPktinfo, "IP_PKTINFO") { ip.pktinfo = true }
        try readBeyondCriu(&ip, s, v6: v6, stream: type == Int32(SOCK_STREAM.rawValue))
        guard type == Int32(SOCK_RAW.rawValue) else { return ip }
        var raw = IpOptsRawEntry()
        raw.hdrincl = v6 ? try s.bool(O.solIPv6, ipv6Hdrincl, "IPV6_HDRINCL") : try s.bool(O.solIP, ipHdrincl, "IP_HDRINCL")
        if !v6 { raw.nodefrag = try s.bool(O.solIP, ipNodefrag, "IP_NODEFRAG") }
        if let filter = try icmpFilter(s, v6: v6, proto: proto) { raw.icmpvFilter = filter }
        ip.raw = raw
        return ip
    }

    /// The ICMP types a raw ICMP socket filters out: one word (IPv4) or eight (IPv6).
    private static func icmpFilter(_ s: SocketOption, v6: Bool, proto: Int32) throws -> [UInt32]? {
        guard proto == (v6 ? Int32(IPPROTO_ICMPV6) : Int32(IPPROTO_ICMP)) else { return nil }
        let b = v6 ? try s.bytes(solIcmpv6, icmpFilter, 32, "ICMP6_FILTER") : try s.bytes(solRaw, icmpFilter, 4, "ICMP_FILTER")
        return stride(from: 0, to: b.count - 3, by: 4).map { i in b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i, as: UInt32.self) } }
    }

    /// IP_FREEBIND, or IPV6_FREEBIND (raw IPv6 sockets know only that one).
    static func setFreebind(_ s: SocketOption, family: Int32, _ on: Bool) throws {
        if family == AF_INET6 { try s.set(O.solIPv6, ipv6Freebind, on ? 1 : 0, "IPV6_FREEBIND") }
        else { try s.set(O.solIP, O.ipFreebind, on ? 1 : 0, "IP_FREEBIND") }
    }

    /// Sets what the entry holds (IP_FREEBIND is set around bind by the caller).
    func apply(_ s: SocketOption, family: Int32) throws {
        let v6 = family == AF_INET6
        if hasTos { try v6 ? s.set(O.solIPv6, Self.ipv6Tclass, Int32(bitPattern: tos), "IPV6_TCLASS") : s.set(O.solIP, O.ipTos, Int32(bitPattern: tos), "IP_TOS") }
        if hasTtl { try v6 ? s.set(O.solIPv6, Self.ipv6UnicastHops, Int32(bitPattern: ttl), "IPV6_UNICAST_HOPS") : s.set(O.solIP, Self.ipTtl, Int32(bitPattern: ttl), "IP_TTL") }
        if pktinfo { try v6 ? s.set(O.solIPv6, Self.ipv6Recvpktinfo, 1, "IPV6_RECVPKTINFO") : s.set(O.solIP, Self.ipPktinfo, 1, "IP_PKTINFO") }
        try applyBeyondCriu(s, v6: v6)
        guard hasRaw else { return }
        if raw.hdrincl { try v6 ? s.set(O.solIPv6, Self.ipv6Hdrincl, 1, "IPV6_HDRINCL") : s.set(O.solIP, Self.ipHdrincl, 1, "IP_HDRINCL") }
        if raw.nodefrag { try s.set(O.solIP, Self.ipNodefrag, 1, "IP_NODEFRAG") }
        if !raw.icmpvFilter.isEmpty {
            let b = raw.icmpvFilter.flatMap { bytes($0) }
            try v6 ? s.set(Self.solIcmpv6, Self.icmpFilter, bytes: b, "ICMP6_FILTER") : s.set(Self.solRaw, Self.icmpFilter, bytes: b, "ICMP_FILTER")
        }
    }
}
