import Foundation
import LinuxKernel
import CShim
import Images

/// AF_PACKET sockets (SOCK_RAW, SOCK_DGRAM and the old SOCK_PACKET) as CRIU's
/// packet_sock_entry in files.img. What the socket is bound to, its PACKET_* options,
/// memberships, fanout group and ring layout come from PACKET_DIAG of the tree's network
/// namespace, as in CRIU's sk-packet.c; the generic options from the socket itself.
/// Packets waiting in the receive queue or a ring are not kept (CRIU drops them too):
/// a packet socket is a tap on a device, which loses packets by design.
final class PacketSocketDump {
    static let solPacket: Int32 = 263
    private var table: [UInt32: SockDiagMessage]?

    /// The entry for socket `ino` behind `pid`'s `fd`; nil when it is not a packet socket.
    func entry(pid: Int32, fd: Int32, ino: UInt32, id: UInt32, flags: UInt32) throws -> PacketSockEntry? {
        let place = "pid \(pid) fd \(fd)"
        let sock = try Syscall.takeFd(pid: pid, fd: fd)
        defer { close(sock) }
        let s = SocketOption(fd: sock, owner: "\(place) (packet socket)")
        guard try s.int(SocketOption.solSocket, SocketOption.soDomain, "SO_DOMAIN") == AF_PACKET else { return nil }
        if table == nil { table = try Self.diagnose(netnsOf: pid) }
        guard let m = table?[ino] else {
            throw CheckpointError(.notFound, "\(place): packet socket (inode \(ino)) is not in PACKET_DIAG of its network namespace")
        }
        try refuseWhatCannotBeCarried(s, place, ino)
        var e = PacketSockEntry()
        e.id = id; e.type = UInt32(m.u8(1)); e.flags = flags; e.fown = FownEntry.none
        // The protocol as socket(2) takes it, in network byte order (diag gives host order).
        e.protocol = UInt32(UInt16(m.u8(2)) << 8 | UInt16(m.u8(3)))
        e.opts = try SkOptsEntry.read(s)
        guard let info = m.attributes[Self.diagInfo], info.count >= 24 else {
            throw CheckpointError(.kernel, "\(place): PACKET_DIAG gave no PACKET_DIAG_INFO for packet socket \(ino)")
        }
        let word = { SockDiagMessage.u32(info, $0 * 4) }
        e.ifindex = word(0); e.version = word(1); e.reserve = word(2); e.copyThresh = word(3); e.timestamp = word(4)
        let pdi = word(5)
        e.auxData = pdi & 0x2 != 0; e.origDev = pdi & 0x4 != 0; e.vnetHdr = pdi & 0x8 != 0; e.loss = pdi & 0x10 != 0
        e.mclist = Self.memberships(m.attributes[Self.diagMclist] ?? [])
        if let f = m.attributeU32(Self.diagFanout) { e.fanout = f }
        if let r = m.attributes[Self.diagRxRing].flatMap(Self.ring) { e.rxRing = r }
        if let r = m.attributes[Self.diagTxRing].flatMap(Self.ring) { e.txRing = r }
        return e
    }

    /// Options the image has no field for are refused when set, rather than lost.
    private func refuseWhatCannotBeCarried(_ s: SocketOption, _ place: String, _ ino: UInt32) throws {
        var len = socklen_t(0)
        if getsockopt(s.fd, SocketOption.solSocket, SocketOption.soGetFilter, nil, &len) == 0 && len > 0 {
            throw CheckpointError(.unsupported, "\(place): packet socket (inode \(ino)) has a BPF filter attached (SO_ATTACH_FILTER), which cannot be dumped yet")
        }
        for (opt, name) in [(20, "PACKET_QDISC_BYPASS"), (23, "PACKET_IGNORE_OUTGOING"), (19, "PACKET_TX_HAS_OFF")] {
            if let v = try s.optionalInt(Self.solPacket, Int32(opt), name), v != 0 {
                throw CheckpointError(.unsupported, "\(place): packet socket (inode \(ino)) has \(name) set, which CRIU's image cannot carry")
            }
        }
    }

    /// PACKET_ADD_MEMBERSHIP entries (struct packet_diag_mclist, 44 bytes each). One added
    /// n times is listed once with its count; the image lists it n times (CRIU's restore
    /// adds each entry once).
    private static func memberships(_ raw: [UInt8]) -> [PacketMclist] {
        stride(from: 0, to: raw.count - 43, by: 44).flatMap { o -> [PacketMclist] in
            var m = PacketMclist()
            m.index = SockDiagMessage.u32(raw, o)
            m.type = UInt32(UInt16(raw[o + 8]) | UInt16(raw[o + 9]) << 8)
            let alen = Int(UInt16(raw[o + 10]) | UInt16(raw[o + 11]) << 8)
            m.addr = Data(raw[(o + 12)..<(o + 12 + min(alen, 32))])
            return Array(repeating: m, count: Int(SockDiagMessage.u32(raw, o + 4)))
        }
    }

    private static func ring(_ r: [UInt8]) -> PacketRing? {
        guard r.count >= 28 else { return nil }
        var ring = PacketRing()
        ring.blockSize = SockDiagMessage.u32(r, 0); ring.blockNr = SockDiagMessage.u32(r, 4)
        ring.frameSize = SockDiagMessage.u32(r, 8); ring.frameNr = SockDiagMessage.u32(r, 12)
        ring.retireTmo = SockDiagMessage.u32(r, 16); ring.sizeofPriv = SockDiagMessage.u32(r, 20)
        ring.features = SockDiagMessage.u32(r, 24)
        return ring
    }

    static let diagInfo: UInt16 = 0, diagMclist: UInt16 = 1, diagRxRing: UInt16 = 2, diagTxRing: UInt16 = 3, diagFanout: UInt16 = 4

    /// Every packet socket of the network namespace of `pid`, by inode.
    private static func diagnose(netnsOf pid: Int32) throws -> [UInt32: SockDiagMessage] {
        var req: [UInt8] = [UInt8(AF_PACKET), 0, 0, 0]
        SockDiag.append32(&req, 0)                     // any inode
        SockDiag.append32(&req, 0x1 | 0x2 | 0x4 | 0x8) // INFO, MCLIST, RING_CFG, FANOUT
        SockDiag.append32(&req, ~0); SockDiag.append32(&req, ~0)
        var out: [UInt32: SockDiagMessage] = [:]
        for m in try SockDiag.dump(request: req, headerSize: 16, netnsOf: pid) { out[m.u32(4)] = m }
        return out
    }
}
