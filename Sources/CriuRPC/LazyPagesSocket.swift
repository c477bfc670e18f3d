import Foundation
import Engine
import LinuxKernel

/// The lazy-pages daemon's socket, named as CRIU names it (lazy-pages.socket in the work
/// directory): a SOCK_SEQPACKET socket where the restore sends one datagram per task, its
/// pid in the images and its pid on the host (4 bytes each) with its userfaultfd
/// attached, and closes its end once the tree runs.
public enum LazyPagesSocket {
    public static let name = "lazy-pages.socket"

    /// The daemon's listening socket in `directory` (a stale one is replaced).
    public static func listen(directory: String) throws -> Int32 {
        let path = (directory as NSString).appendingPathComponent(name)
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw CheckpointError.errno("lazy pages: socket") }
        do {
            // Bound under another name and renamed once listening: a restore that sees the
            // socket can connect.
            let early = path + ".new"
            unlink(early)
            try withAddress(early) { if bind(fd, $0, $1) != 0 { throw CheckpointError.errno("lazy pages: bind \(early)") } }
            if Glibc.listen(fd, 1) != 0 || rename(early, path) != 0 { throw CheckpointError.errno("lazy pages: listen on \(path)") }
        } catch { close(fd); throw error }
        return fd
    }

    /// The restore's end: connected to the daemon in `directory`.
    public static func connect(directory: String) throws -> LazyPagesSink {
        let path = (directory as NSString).appendingPathComponent(name)
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw CheckpointError.errno("lazy pages: socket") }
        do {
            try withAddress(path) {
                if Glibc.connect(fd, $0, $1) != 0 { throw CheckpointError.errno("lazy pages: no lazy-pages daemon at \(path)") }
            }
        } catch { close(fd); throw error }
        return Connection(RPCSocket(fd: fd))
    }

    /// The next task's pids and userfaultfd (ours now), nil once the restore closed its end.
    public static func receive(_ socket: RPCSocket) throws -> (pid: Int32, hostPid: Int32, uffd: Int32)? {
        guard let d = try socket.receive() else { return nil }
        guard d.bytes.count == 8, d.fds.count == 1 else {
            d.fds.forEach { close($0) }
            throw CheckpointError(.invalidArgument, "lazy pages: a message of \(d.bytes.count) bytes and \(d.fds.count) fds, want two pids and a userfaultfd")
        }
        let pids = d.bytes.withUnsafeBytes { ($0.loadUnaligned(as: Int32.self), $0.loadUnaligned(fromByteOffset: 4, as: Int32.self)) }
        return (Int32(littleEndian: pids.0), Int32(littleEndian: pids.1), d.fds[0])
    }

    private static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Void) throws {
        var sa = sockaddr_un()
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: sa.sun_path) else {
            throw CheckpointError(.invalidArgument, "lazy pages: socket path \(path) is too long")
        }
        sa.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sa.sun_path) { $0.copyBytes(from: bytes) }
        try withUnsafePointer(to: &sa) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    final class Connection: LazyPagesSink {
        private var socket: RPCSocket?
        init(_ socket: RPCSocket) { self.socket = socket }
        deinit { finish() }

        func send(pid: Int32, hostPid: Int32, uffd: Int32) throws {
            guard let socket else { throw CheckpointError(.invalidState, "lazy pages: the connection is closed") }
            let bytes = withUnsafeBytes(of: pid.littleEndian) { Array($0) } + withUnsafeBytes(of: hostPid.littleEndian) { Array($0) }
            try socket.send(bytes, fds: [uffd])
        }

        func finish() {
            if let socket { close(socket.fd) }
            socket = nil
        }
    }
}
