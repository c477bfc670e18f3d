import Foundation
import LinuxKernel
import Images

/// Multicast groups a socket joined. No call lists them, so each group the kernel keeps
/// on an interface of the task's network namespace (/proc/PID/net/igmp, igmp6) is asked of
/// the socket with MCAST_MSFILTER, which answers only for the socket's own memberships.
/// They ride in ip_opts_entry.mc_groups (ours) and are joined again with MCAST_JOIN_GROUP.
enum InetMulticast {
    static let mcastJoinGroup: Int32 = 42, mcastMsfilter: Int32 = 48

    /// Groups joined for every source. One with a source filter (IP_ADD_SOURCE_MEMBERSHIP,
    /// MCAST_BLOCK_SOURCE, an INCLUDE mode) is refused: its sources are not kept.
    static func memberships(_ s: SocketOption, family: Int32, pid: Int32) throws -> [IpMcGroupEntry] {
        try groups(pid: pid, v6: family == AF_INET6).compactMap { ifindex, group in
            guard let (mode, sources) = filter(s.fd, family: family, ifindex: ifindex, group: group) else { return nil }
            if mode != 0 /* MCAST_EXCLUDE */ || sources != 0 {
                var text = [CChar](repeating: 0, count: 64)
                _ = inet_ntop(family, group, &text, socklen_t(text.count))
                throw CheckpointError(.unsupported, "\(s.owner): it joined the multicast group \(String(cString: text)) (interface \(ifindex)) with a source filter, which is not carried")
            }
            var e = IpMcGroupEntry()
            e.ifindex = ifindex
            e.addr = stride(from: 0, to: group.count, by: 4).map { i in group.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i, as: UInt32.self) } }
            return e
        }
    }

    /// struct group_req: interface, then the group as a sockaddr_storage at 8.
    static func join(_ s: SocketOption, family: Int32, _ g: IpMcGroupEntry) throws {
        var b = [UInt8](repeating: 0, count: 136)
        b.replaceSubrange(0..<4, with: withUnsafeBytes(of: g.ifindex) { Array($0) })
        b.replaceSubrange(8..<10, with: withUnsafeBytes(of: UInt16(family)) { Array($0) })
        let group = g.addr.flatMap { w in withUnsafeBytes(of: w) { Array($0) } }
        let at = family == AF_INET6 ? 16 : 12
        guard group.count == (family == AF_INET6 ? 16 : 4) else { throw CheckpointError(.image, "\(s.owner): a multicast group of \(group.count) bytes") }
        b.replaceSubrange(at..<at + group.count, with: group)
        try s.set(family == AF_INET6 ? SocketOption.solIPv6 : SocketOption.solIP, mcastJoinGroup, bytes: b, "MCAST_JOIN_GROUP (interface \(g.ifindex))")
    }

    /// (interface index, group address bytes) of every group in the namespace.
    private static func groups(pid: Int32, v6: Bool) -> [(UInt32, [UInt8])] {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/net/\(v6 ? "igmp6" : "igmp")", encoding: .utf8) else { return [] }
        var out: [(UInt32, [UInt8])] = []
        var ifindex: UInt32 = 0
        for line in text.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if v6 {
                // "IDX DEV GROUP(32 hex digits) USERS FLAGS TIMER"
                guard f.count >= 3, let idx = UInt32(f[0]), f[2].count == 32 else { continue }
                let hex = Array(f[2])
                out.append((idx, stride(from: 0, to: 32, by: 2).compactMap { UInt8(String(hex[$0..<$0 + 2]), radix: 16) }))
            } else if let first = line.first, first.isNumber, let idx = UInt32(f[0]) {
                ifindex = idx
            } else if line.first == "\t", let word = f.first.flatMap({ UInt32($0, radix: 16) }) {
                // The group as the kernel holds it (network order), printed as a number.
                out.append((ifindex, withUnsafeBytes(of: word.littleEndian) { Array($0) }))
            }
        }
        return out
    }

    /// struct group_filter: interface, the group (a sockaddr_storage at 8), then mode and
    /// source count at 136; nil when the socket is not a member.
    private static func filter(_ fd: Int32, family: Int32, ifindex: UInt32, group: [UInt8]) -> (UInt32, UInt32)? {
        var b = [UInt8](repeating: 0, count: 272)
        b.replaceSubrange(0..<4, with: withUnsafeBytes(of: ifindex) { Array($0) })
        b.replaceSubrange(8..<10, with: withUnsafeBytes(of: UInt16(family)) { Array($0) })
        let at = family == AF_INET6 ? 16 : 12
        b.replaceSubrange(at..<at + group.count, with: group)
        var len = socklen_t(b.count)
        guard getsockopt(fd, family == AF_INET6 ? SocketOption.solIPv6 : SocketOption.solIP, mcastMsfilter, &b, &len) == 0 else { return nil }
        return b.withUnsafeBytes { ($0.loadUnaligned(fromByteOffset: 136, as: UInt32.self), $0.loadUnaligned(fromByteOffset: 140, as: UInt32.self)) }
    }
}
