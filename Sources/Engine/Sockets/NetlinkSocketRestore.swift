import Foundation
import LinuxKernel
import CShim
import Images

/// Makes netlink sockets again in the tree's network namespace: bound to the dumped port
/// id with the first 32 groups, the groups above by NETLINK_ADD_MEMBERSHIP, connected to
/// the dumped peer, options back, then the file flags.
enum NetlinkSocketRestore {
    private static let sol = NetlinkSocketDump.solNetlink
    private static let addMembership: Int32 = 1
    private static let connected: UInt32 = 1   // NETLINK_CONNECTED

    static func open(_ e: NetlinkSkEntry, rootPid: Int32) throws -> Int32 {
        try NamespaceJoin.run(in: rootPid, [.net]) { try make(e) }
    }

    private static func make(_ e: NetlinkSkEntry) throws -> Int32 {
        let type = e.flags & NetlinkSocketDump.datagram != 0 ? SOCK_DGRAM.rawValue : SOCK_RAW.rawValue
        let fd = socket(AF_NETLINK, Int32(type) | Int32(SOCK_CLOEXEC.rawValue), Int32(bitPattern: e.protocol))
        if fd < 0 { throw CheckpointError.errno("socket for netlink socket \(e.id) (protocol \(e.protocol))") }
        do {
            let s = SocketOption(fd: fd, owner: "netlink socket \(e.id)")
            if e.portid != 0 {
                try address(e.portid, groups: e.groups.first ?? 0) { addr, len in
                    if Glibc.bind(fd, addr, len) != 0 { throw CheckpointError.errno("bind netlink socket \(e.id) to port \(e.portid)") }
                }
            }
            for (word, bits) in e.groups.enumerated().dropFirst() {
                for bit in 0..<32 where bits & (1 << bit) != 0 {
                    try s.set(sol, addMembership, Int32(word * 32 + bit + 1), "NETLINK_ADD_MEMBERSHIP")
                }
            }
            if e.state == connected {
                try address(e.dstPortid, groups: e.dstGroup == 0 ? 0 : 1 << (e.dstGroup - 1)) { addr, len in
                    if Glibc.connect(fd, addr, len) != 0 { throw CheckpointError.errno("connect netlink socket \(e.id) to port \(e.dstPortid)") }
                }
            }
            for o in NetlinkSocketDump.options where e.flags & o.bit != 0 { try s.set(sol, o.option, 1, o.name) }
            try e.opts.apply(s)
            if fcntl(fd, F_SETFL, Int32(bitPattern: e.flags & 0xffffff) & ~O_ACCMODE) != 0 {
                throw CheckpointError.errno("set file flags of netlink socket \(e.id)")
            }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// struct sockaddr_nl: family, pad, port id, groups.
    private static func address(_ port: UInt32, groups: UInt32, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Void) throws {
        var raw = [UInt8](repeating: 0, count: 12)
        raw.withUnsafeMutableBytes { b in
            b.storeBytes(of: UInt16(AF_NETLINK), toByteOffset: 0, as: UInt16.self)
            b.storeBytes(of: port, toByteOffset: 4, as: UInt32.self)
            b.storeBytes(of: groups, toByteOffset: 8, as: UInt32.self)
        }
        try raw.withUnsafeBytes { try body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count)) }
    }
}
