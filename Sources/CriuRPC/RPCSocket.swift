import Foundation
import LinuxKernel
import Images
import SwiftProtobuf

/// One end of CRIU's RPC socket: a SOCK_SEQPACKET socket where every datagram holds
/// exactly one protobuf message (no length prefix); descriptors travel as SCM_RIGHTS.
public final class RPCSocket {
    public let fd: Int32

    public init(fd: Int32) { self.fd = fd }

    /// A message and the descriptors that came with it (owned by the receiver).
    public struct Datagram {
        public var bytes: [UInt8]
        public var fds: [Int32]
    }

    /// The process at the other end, as the kernel recorded it when the socket was made.
    public func peerPid() throws -> Int32 {
        var cred = PeerCredentials()
        var len = socklen_t(MemoryLayout<PeerCredentials>.size)
        if getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 {
            throw CheckpointError.errno("SO_PEERCRED on rpc socket \(fd)")
        }
        return cred.pid
    }

    /// The next datagram, or nil when the peer has closed its end.
    public func receive() throws -> Datagram? {
        // MSG_TRUNC with MSG_PEEK returns the datagram's full size without consuming it.
        var probe: UInt8 = 0
        let size = try Syscall.retrying("peek rpc message on fd \(fd)") {
            recv(fd, &probe, 0, Int32(MSG_PEEK | MSG_TRUNC))
        }
        var bytes = [UInt8](repeating: 0, count: max(size, 1))
        var control = [UInt8](repeating: 0, count: Self.controlSpace(fds: Self.maxFds))
        let (n, controlLength) = try bytes.withUnsafeMutableBytes { data in
            try control.withUnsafeMutableBytes { ctl in
                var iov = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return try withUnsafeMutablePointer(to: &iov) { iovp in
                    var msg = msghdr()
                    msg.msg_iov = iovp
                    msg.msg_iovlen = 1
                    msg.msg_control = ctl.baseAddress
                    msg.msg_controllen = ctl.count
                    let n = try Syscall.retrying("receive rpc message on fd \(fd)") {
                        recvmsg(fd, &msg, Int32(MSG_CMSG_CLOEXEC))
                    }
                    return (n, Int(msg.msg_controllen))
                }
            }
        }
        control.removeSubrange(min(controlLength, control.count)...)
        let fds = Self.parseRights(control)
        if n == 0 && size == 0 {
            fds.forEach { close($0) }
            return nil
        }
        bytes.removeSubrange(n...)
        return Datagram(bytes: bytes, fds: fds)
    }

    /// Sends `bytes` as one datagram, with `fds` attached as SCM_RIGHTS.
    public func send(_ bytes: [UInt8], fds: [Int32] = []) throws {
        var control = [UInt8](repeating: 0, count: fds.isEmpty ? 0 : Self.controlSpace(fds: fds.count))
        if !fds.isEmpty {
            control.withUnsafeMutableBytes { ctl in
                var header = cmsghdr()
                header.cmsg_len = Self.controlLength(fds: fds.count)
                header.cmsg_level = SOL_SOCKET
                header.cmsg_type = Int32(SCM_RIGHTS)
                ctl.storeBytes(of: header, as: cmsghdr.self)
                for (i, f) in fds.enumerated() {
                    ctl.storeBytes(of: f, toByteOffset: Self.headerSize + i * 4, as: Int32.self)
                }
            }
        }
        var payload = bytes
        let sent = try payload.withUnsafeMutableBytes { data in
            try control.withUnsafeMutableBytes { ctl in
                var iov = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return try withUnsafeMutablePointer(to: &iov) { iovp in
                    var msg = msghdr()
                    msg.msg_iov = iovp
                    msg.msg_iovlen = 1
                    msg.msg_control = ctl.count > 0 ? ctl.baseAddress : nil
                    msg.msg_controllen = ctl.count
                    // MSG_NOSIGNAL: a peer that went away is an error to report, not SIGPIPE.
                    return try Syscall.retrying("send rpc message on fd \(fd)") {
                        sendmsg(fd, &msg, Int32(MSG_NOSIGNAL))
                    }
                }
            }
        }
        if sent != bytes.count {
            throw CheckpointError(.kernel, "send rpc message on fd \(fd): \(sent) of \(bytes.count) bytes sent")
        }
    }

    public func receive<M: SwiftProtobuf.Message>(_ type: M.Type) throws -> (M, [Int32])? {
        guard let d = try receive() else { return nil }
        do {
            // partial: criu_opts' images_dir_fd is `required` but clients may send images_dir instead.
            return (try M(serializedBytes: d.bytes, partial: true), d.fds)
        } catch {
            d.fds.forEach { close($0) }
            throw CheckpointError(.invalidArgument, "rpc message of \(d.bytes.count) bytes is not a valid \(M.protoMessageName): \(error)")
        }
    }

    public func send<M: SwiftProtobuf.Message>(_ message: M, fds: [Int32] = []) throws {
        let bytes: [UInt8]
        do { bytes = try message.serializedBytes(partial: true) } catch {
            throw CheckpointError(.invalidArgument, "encode \(M.protoMessageName): \(error)")
        }
        try send(bytes, fds: fds)
    }

    // MARK: - SCM_RIGHTS layout (CMSG_* are macros Swift cannot import)

    static let maxFds = 64
    static let headerSize = (MemoryLayout<cmsghdr>.size + 7) & ~7

    static func controlLength(fds: Int) -> Int { headerSize + fds * MemoryLayout<Int32>.size }
    static func controlSpace(fds: Int) -> Int { (controlLength(fds: fds) + 7) & ~7 }

    /// Every descriptor in the SCM_RIGHTS messages of a control buffer.
    static func parseRights(_ control: [UInt8]) -> [Int32] {
        var fds: [Int32] = []
        control.withUnsafeBytes { raw in
            var offset = 0
            while offset + headerSize <= raw.count {
                let header = raw.loadUnaligned(fromByteOffset: offset, as: cmsghdr.self)
                let len = Int(header.cmsg_len)
                guard len >= headerSize, offset + len <= raw.count else { break }
                if header.cmsg_level == SOL_SOCKET && header.cmsg_type == Int32(SCM_RIGHTS) {
                    for i in 0..<((len - headerSize) / 4) {
                        fds.append(raw.loadUnaligned(fromByteOffset: offset + headerSize + i * 4, as: Int32.self))
                    }
                }
                offset += (len + 7) & ~7
            }
        }
        return fds
    }
}

/// struct ucred (glibc hides it behind _GNU_SOURCE).
private struct PeerCredentials {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
