import Foundation
import LinuxKernel
import CShim
import Images

/// Makes AF_PACKET sockets again in the tree's network namespace, in CRIU's order: bind
/// to the device, version, reserve, timestamp, copy threshold, flags, memberships, rings,
/// fanout (which needs a bound socket), then the generic options and file flags.
enum PacketSocketRestore {
    private static let sol = PacketSocketDump.solPacket
    private static let version: Int32 = 10, reserve: Int32 = 12, timestamp: Int32 = 17, copyThresh: Int32 = 7
    private static let auxData: Int32 = 8, origDev: Int32 = 9, vnetHdr: Int32 = 15, loss: Int32 = 14
    private static let addMembership: Int32 = 1, rxRing: Int32 = 5, txRing: Int32 = 13, fanout: Int32 = 18
    private static let sockPacket: UInt32 = 10

    static func open(_ e: PacketSockEntry, rootPid: Int32) throws -> Int32 {
        try NamespaceJoin.run(in: rootPid, [.net]) { try make(e) }
    }

    private static func make(_ e: PacketSockEntry) throws -> Int32 {
        let fd = socket(AF_PACKET, Int32(e.type) | Int32(SOCK_CLOEXEC.rawValue), Int32(e.protocol))
        if fd < 0 { throw CheckpointError.errno("socket for packet socket \(e.id) (type \(e.type), protocol \(e.protocol))") }
        do {
            let s = SocketOption(fd: fd, owner: "packet socket \(e.id)")
            try bind(fd, e)
            if e.type != sockPacket {
                try s.set(sol, version, Int32(bitPattern: e.version), "PACKET_VERSION")
                try s.set(sol, reserve, Int32(bitPattern: e.reserve), "PACKET_RESERVE")
                try s.set(sol, timestamp, Int32(bitPattern: e.timestamp), "PACKET_TIMESTAMP")
                try s.set(sol, copyThresh, Int32(bitPattern: e.copyThresh), "PACKET_COPY_THRESH")
                for (on, opt, name) in [(e.auxData, auxData, "PACKET_AUXDATA"), (e.origDev, origDev, "PACKET_ORIGDEV"),
                                        (e.vnetHdr, vnetHdr, "PACKET_VNET_HDR"), (e.loss, loss, "PACKET_LOSS")] where on {
                    try s.set(sol, opt, 1, name)
                }
                for m in e.mclist {
                    // struct packet_mreq with room for any address (CRIU's packet_mreq_max).
                    var mreq = bytes(Int32(bitPattern: m.index)) + bytes(UInt16(m.type)) + bytes(UInt16(m.addr.count))
                    mreq += [UInt8](m.addr) + [UInt8](repeating: 0, count: 32 - min(m.addr.count, 32))
                    try s.set(sol, addMembership, bytes: mreq, "PACKET_ADD_MEMBERSHIP (type \(m.type), ifindex \(m.index))")
                }
                if e.hasRxRing { try s.set(sol, rxRing, bytes: ring(e.rxRing), "PACKET_RX_RING") }
                if e.hasTxRing { try s.set(sol, txRing, bytes: ring(e.txRing), "PACKET_TX_RING") }
                if e.hasFanout { try s.set(sol, fanout, Int32(bitPattern: e.fanout), "PACKET_FANOUT") }
            }
            try e.opts.apply(s)
            if fcntl(fd, F_SETFL, Int32(bitPattern: e.flags) & ~O_ACCMODE) != 0 { throw CheckpointError.errno("set file flags of packet socket \(e.id)") }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// Bound to the dumped device (0: every device), with the socket's own protocol.
    /// SOCK_PACKET names its device by name, in a bare sockaddr.
    private static func bind(_ fd: Int32, _ e: PacketSockEntry) throws {
        if e.type == sockPacket {
            guard e.ifindex > 0 else { return }
            var name = [CChar](repeating: 0, count: 16)  // IF_NAMESIZE
            guard if_indextoname(e.ifindex, &name) != nil else { throw CheckpointError.errno("name of interface \(e.ifindex) for packet socket \(e.id)") }
            var sa = sockaddr()
            sa.sa_family = sa_family_t(AF_PACKET)
            withUnsafeMutableBytes(of: &sa.sa_data) { d in
                for (i, c) in name.prefix(d.count - 1).enumerated() { d[i] = UInt8(bitPattern: c) }
            }
            if Glibc.bind(fd, &sa, socklen_t(MemoryLayout<sockaddr>.size)) != 0 {
                throw CheckpointError.errno("bind packet socket \(e.id) to interface \(String(cString: name))")
            }
            return
        }
        // struct sockaddr_ll: family, protocol (0: the socket's), ifindex, then 12 bytes
        // of link-layer details bind ignores.
        let ll = bytes(UInt16(AF_PACKET)) + bytes(UInt16(0)) + bytes(e.ifindex) + [UInt8](repeating: 0, count: 12)
        let r = ll.withUnsafeBytes { Glibc.bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(ll.count)) }
        if r != 0 { throw CheckpointError.errno("bind packet socket \(e.id) to interface \(e.ifindex)") }
    }

    /// struct tpacket_req3; the kernel reads its first four words for TPACKET_V1/V2.
    private static func ring(_ r: PacketRing) -> [UInt8] {
        [r.blockSize, r.blockNr, r.frameSize, r.frameNr, r.retireTmo, r.sizeofPriv, r.features].flatMap { bytes($0) }
    }

    private static func bytes<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}
