import Foundation
import LinuxKernel
import CShim
import Images

/// Queued packets: read from sk-queues.img, sent back with the files they carry.
extension UnixSocketRestore {
    /// Datagrams queued on a socket outside a pair are re-sent to its name from a socket of
    /// ours (once: a socket connected to a peer refuses strangers afterwards).
    func refillDatagrams(_ e: UnixSkEntry) throws {
        guard refilled.insert(e.ino).inserted, let data = images.skQueues[e.id], !data.isEmpty else { return }
        guard !e.name.isEmpty else {
            throw CheckpointError(.image, "UNIX socket \(e.ino) has \(data.count) queued datagrams but no name to send them to")
        }
        let s = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        if s < 0 { throw CheckpointError.errno("socket to refill UNIX socket \(e.ino)") }
        defer { close(s) }
        try inNameDirectory(of: e) {
            try withAddress(e) { addr, len in
                if Glibc.connect(s, addr, len) != 0 { throw CheckpointError.errno("connect to refill UNIX socket \(e.ino)") }
            }
        }
        for d in data { try send(s, d, to: e.ino) }
    }

    func send(_ fd: Int32, _ packet: Packet, to ino: UInt32) throws {
        let fds = try packet.rights.map { id -> Int32 in
            if let s = byID[id].flatMap({ sockets[$0] }) ?? carried[id] { return s }
            throw CheckpointError(.image, "sk-queues.img: a packet for UNIX socket \(ino) carries file \(id), which was not restored")
        }
        let data = packet.data
        let header = 16, space = header + ((fds.count * 4 + 7) & ~7)
        var control = [UInt8](repeating: 0, count: fds.isEmpty ? 0 : space)
        if !fds.isEmpty {
            control.withUnsafeMutableBytes { c in
                c.storeBytes(of: header + fds.count * 4, toByteOffset: 0, as: Int.self)
                c.storeBytes(of: SOL_SOCKET, toByteOffset: 8, as: Int32.self)
                c.storeBytes(of: Int32(SCM_RIGHTS), toByteOffset: 12, as: Int32.self)
                for (i, fd) in fds.enumerated() { c.storeBytes(of: fd, toByteOffset: header + i * 4, as: Int32.self) }
            }
        }
        let n = data.withUnsafeBytes { d in
            control.withUnsafeMutableBytes { c in
                var iov = iovec(iov_base: UnsafeMutableRawPointer(mutating: d.baseAddress), iov_len: data.count)
                return withUnsafeMutablePointer(to: &iov) { iovp in
                    var msg = msghdr()
                    msg.msg_iov = iovp; msg.msg_iovlen = 1
                    msg.msg_control = fds.isEmpty ? nil : c.baseAddress; msg.msg_controllen = fds.isEmpty ? 0 : c.count
                    return sendmsg(fd, &msg, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                }
            }
        }
        if n != data.count { throw CheckpointError.errno("refill the queue of UNIX socket \(ino) with \(data.count) bytes (sent \(n))") }
    }

    /// sk-queues.img: the packets queued on each socket, by the file id of their receiver.
    static func queues(_ dir: ImageDirectory) throws -> [UInt32: [Packet]] {
        var out: [UInt32: [Packet]] = [:]
        guard dir.exists(.skQueues) else { return out }
        var r = try dir.reader(.skQueues)
        do {
            while let e = try r.next(SkPacketEntry.self) {
                if let scm = e.scm.first(where: { $0.type != 1 /* SCM_RIGHTS */ }) {
                    throw CheckpointError(.image, "sk-queues.img: a packet for socket \(e.idFor) carries control message type \(scm.type), which cannot be restored")
                }
                out[e.idFor, default: []].append(Packet(data: try r.raw(Int(e.length)), rights: e.scm.flatMap(\.rights)))
            }
        } catch let e as ImageError { throw e.checkpointError }
        return out
    }
}
