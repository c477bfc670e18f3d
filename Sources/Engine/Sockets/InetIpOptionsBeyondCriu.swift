import Foundation
import LinuxKernel
import Images

/// IP-level options CRIU's ip_opts_entry has no field for, kept in fields of ours numbered
/// past CRIU's (101 on), which CRIU skips when it reads the image: IP_RECVERR, the path-MTU
/// mode, the multicast TTL/hops, loop and interface, and the groups the socket joined.
/// Each is written only when it differs from a new socket's, so an image of a socket that
/// sets none of them is CRIU's byte for byte.
extension IpOptsEntry {
    static let ipMulticastIf: Int32 = 32, ipMulticastTtl: Int32 = 33, ipMulticastLoop: Int32 = 34
    static let ipMtuDiscover: Int32 = 10, ipRecverr: Int32 = 11, ipv6MtuDiscover: Int32 = 23, ipv6Recverr: Int32 = 25
    static let ipv6MulticastIf: Int32 = 17, ipv6MulticastHops: Int32 = 18, ipv6MulticastLoop: Int32 = 19

    /// A stream socket refuses the multicast options (EINVAL), and an accepted TCP socket
    /// reads its SYN's TTL as its multicast TTL: they are left out for it.
    static func readBeyondCriu(_ ip: inout IpOptsEntry, _ s: SocketOption, v6: Bool, stream: Bool) throws {
        let level = v6 ? O.solIPv6 : O.solIP
        if try s.int(level, v6 ? ipv6Recverr : ipRecverr, v6 ? "IPV6_RECVERR" : "IP_RECVERR") != 0 { ip.recverr = true }
        let pmtu = try s.int(level, v6 ? ipv6MtuDiscover : ipMtuDiscover, v6 ? "IPV6_MTU_DISCOVER" : "IP_MTU_DISCOVER")
        // IPv6 sockets start at WANT; IPv4 ones at what ip_no_pmtu_disc says.
        let noPmtuDisc = !v6 && (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_no_pmtu_disc", encoding: .utf8))?.hasPrefix("0") == false
        if pmtu != (noPmtuDisc ? 0 /* DONT */ : 1 /* WANT */) { ip.pmtudisc = UInt32(bitPattern: pmtu) }
        guard !stream else { return }
        let ttl = try s.int(level, v6 ? ipv6MulticastHops : ipMulticastTtl, v6 ? "IPV6_MULTICAST_HOPS" : "IP_MULTICAST_TTL")
        if ttl != 1 { ip.mcTtl = UInt32(bitPattern: ttl) }
        if try !s.bool(level, v6 ? ipv6MulticastLoop : ipMulticastLoop, v6 ? "IPV6_MULTICAST_LOOP" : "IP_MULTICAST_LOOP") { ip.mcLoop = false }
        // IPv6 keeps an interface index; IPv4 an address (network order), as getsockopt gives them.
        let mcIf = v6 ? UInt32(bitPattern: try s.int(level, ipv6MulticastIf, "IPV6_MULTICAST_IF"))
                      : try s.bytes(level, ipMulticastIf, 4, "IP_MULTICAST_IF").withUnsafeBytes { $0.count == 4 ? $0.loadUnaligned(as: UInt32.self) : 0 }
        if mcIf != 0 { ip.mcIf = mcIf }
    }

    /// Sets them again, and joins the groups (MCAST_JOIN_GROUP, on the interface dumped).
    func applyBeyondCriu(_ s: SocketOption, v6: Bool) throws {
        let level = v6 ? O.solIPv6 : O.solIP
        if recverr { try s.set(level, v6 ? Self.ipv6Recverr : Self.ipRecverr, 1, v6 ? "IPV6_RECVERR" : "IP_RECVERR") }
        if hasPmtudisc { try s.set(level, v6 ? Self.ipv6MtuDiscover : Self.ipMtuDiscover, Int32(bitPattern: pmtudisc), v6 ? "IPV6_MTU_DISCOVER" : "IP_MTU_DISCOVER") }
        if hasMcTtl { try s.set(level, v6 ? Self.ipv6MulticastHops : Self.ipMulticastTtl, Int32(bitPattern: mcTtl), v6 ? "IPV6_MULTICAST_HOPS" : "IP_MULTICAST_TTL") }
        if hasMcLoop { try s.set(level, v6 ? Self.ipv6MulticastLoop : Self.ipMulticastLoop, mcLoop ? 1 : 0, v6 ? "IPV6_MULTICAST_LOOP" : "IP_MULTICAST_LOOP") }
        if hasMcIf {
            if v6 { try s.set(level, Self.ipv6MulticastIf, Int32(bitPattern: mcIf), "IPV6_MULTICAST_IF") }
            else { try s.set(level, Self.ipMulticastIf, bytes: withUnsafeBytes(of: mcIf) { Array($0) }, "IP_MULTICAST_IF") }
        }
        for group in mcGroups { try InetMulticast.join(s, family: v6 ? AF_INET6 : AF_INET, group) }
    }
}
