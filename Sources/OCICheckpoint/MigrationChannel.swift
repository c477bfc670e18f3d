import Foundation
import LinuxKernel

/// The control connection of one migration (`migrate` → `receive`): text lines, and whole
/// files framed as `FILE SIZE MODE NAME` followed by SIZE bytes. Both ends are this binary,
/// so the protocol is ours; the version in the greeting lets a newer end refuse an older.
///
///     source                                   destination
///     MIGRATE 2 LAZY(0|1)                  →
///                                          ←   READY 2
///     ROUND N | FINAL N                    →   (a page server for round N, parent N-1)
///                                          ←   PAGES PORT
///     (runc checkpoint --page-server destination:PORT)
///     after FINAL, once the engine starts  →   FILES 1, descriptors.json (or FILES 0): the
///                                              destination starts runc restore, which waits
///     DUMPED N | ABORT REASON              →
///                           after a round  ←   FILES K, K pagemap images of round N
///                           after FINAL    →   FILES K, the final dump's other images
///                                          ←   RESTORED MS | FAILED REASON
final class MigrationChannel {
    static let version = 2
    let fd: Int32
    let peer: String
    private var buffer: [UInt8] = []

    init(fd: Int32, peer: String) {
        self.fd = fd
        self.peer = peer
        var on: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// A socket listening on `address` (HOST:PORT, port 0 for any free one) and the port.
    static func listen(_ address: MigrationAddress) throws -> (fd: Int32, port: UInt16) {
        let (fd, sa) = try socket(address)
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var bound = sa
        guard withSockaddr(&bound, { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }) == 0, Glibc.listen(fd, 1) == 0 else {
            let err = CheckpointError.errno("listen on \(address)")
            close(fd)
            throw err
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withSockaddr(&bound) { getsockname(fd, $0, &len) }
        return (fd, UInt16(bigEndian: bound.sin_port))
    }

    static func accept(_ listener: Int32, what: String) throws -> MigrationChannel {
        let fd = try Syscall.retrying("accept \(what)") { Glibc.accept(listener, nil, nil) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return MigrationChannel(fd: fd, peer: what)
    }

    static func connect(_ address: MigrationAddress) throws -> MigrationChannel {
        var (fd, sa) = try socket(address)
        let rc = withSockaddr(&sa) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        if rc != 0 {
            let err = CheckpointError.errno("connect to the destination \(address)")
            close(fd)
            throw err
        }
        return MigrationChannel(fd: fd, peer: "the destination \(address)")
    }

    private static func socket(_ address: MigrationAddress) throws -> (Int32, sockaddr_in) {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = address.port.bigEndian
        guard inet_pton(AF_INET, address.host, &sa.sin_addr) == 1 else {
            throw CheckpointError(.invalidArgument, "\(address): not an IPv4 address and port")
        }
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw CheckpointError.errno("socket for \(address)") }
        return (fd, sa)
    }

    private static func withSockaddr<T>(_ sa: inout sockaddr_in, _ body: (UnsafeMutablePointer<sockaddr>) -> T) -> T {
        withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1, body) }
    }

    // MARK: - Lines

    func send(_ line: String) throws {
        try sendBytes(Array((line + "\n").utf8), what: line.split(separator: " ").first.map(String.init) ?? line)
    }

    /// The next line, split into words; an error when the peer hung up.
    func receive(expecting what: String) throws -> [String] {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            }
            guard try fill() > 0 else {
                throw CheckpointError(.invalidState, "\(peer) hung up while we waited for \(what)", errno: .EPIPE)
            }
        }
    }

    /// The next line, which must start with `verb`; ABORT and FAILED carry the peer's reason.
    func expect(_ verb: String) throws -> [String] {
        let words = try receive(expecting: verb)
        if words.first == verb { return words }
        let rest = words.dropFirst().joined(separator: " ")
        if words.first == "ABORT" || words.first == "FAILED" {
            throw CheckpointError(.invalidState, rest)
        }
        throw CheckpointError(.invalidState, "\(peer) sent \"\(words.joined(separator: " "))\" where \(verb) was due")
    }

    // MARK: - Files

    /// The regular files `names` of `directory`, after a FILES line.
    func sendFiles(_ names: [String], from directory: String) throws {
        try send("FILES \(names.count)")
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw CheckpointError.errno("open \(path)") }
            defer { close(fd) }
            var st = stat()
            if fstat(fd, &st) != 0 { throw CheckpointError.errno("stat \(path)") }
            try send("FILE \(st.st_size) \(String(st.st_mode & 0o7777, radix: 8)) \(name)")
            // Streamed: a tmpfs image may be large; the size announced is the size sent.
            var left = Int(st.st_size)
            while left > 0 {
                let n = try Syscall.retrying("read \(path)") { read(fd, &chunk, min(left, chunk.count)) }
                if n == 0 { throw CheckpointError(.invalidState, "\(path) shrank while it was sent") }
                try sendBytes(Array(chunk[..<n]), what: name)
                left -= n
            }
        }
    }

    /// Receives a FILES line and its files into `directory`, refusing to overwrite or to
    /// leave it (a name with a slash); returns the names. No fsync: it would be downtime
    /// (~0.7 ms a file on ext4 here), and the sender keeps its copy on disk.
    @discardableResult
    func receiveFiles(into directory: String) throws -> [String] {
        let header = try expect("FILES")
        guard header.count == 2, let count = Int(header[1]), count >= 0 else { throw malformed(header) }
        var names: [String] = []
        for _ in 0..<count {
            let f = try expect("FILE")
            guard f.count == 3 else { throw malformed(f) }
            let parts = f[2].split(separator: " ", maxSplits: 1).map(String.init)
            guard let size = Int(f[1]), size >= 0, parts.count == 2, let mode = mode_t(parts[0], radix: 8),
                  !parts[1].contains("/"), parts[1] != "..", parts[1] != "." else { throw malformed(f) }
            let path = (directory as NSString).appendingPathComponent(parts[1])
            let out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
            if out < 0 { throw CheckpointError.errno("create \(path)") }
            defer { close(out) }
            var left = size
            while left > 0 {
                if buffer.isEmpty, try fill() == 0 {
                    throw CheckpointError(.invalidState, "\(peer) hung up in the middle of \(parts[1])", errno: .EPIPE)
                }
                let n = min(left, buffer.count)
                let written = buffer.withUnsafeBytes { write(out, $0.baseAddress!, n) }
                if written != n { throw CheckpointError.errno("write \(path)") }
                buffer.removeFirst(n)
                left -= n
            }
            names.append(parts[1])
        }
        return names
    }

    private func malformed(_ words: [String]) -> CheckpointError {
        CheckpointError(.invalidArgument, "\(peer) sent a malformed line: \"\(words.joined(separator: " "))\"")
    }

    private func sendBytes(_ bytes: [UInt8], what: String) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CheckpointError.errno("send \(what) to \(peer)")
            }
            off += n
        }
    }

    private func fill() throws -> Int {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let n = try Syscall.retrying("receive from \(peer)") { recv(fd, &chunk, chunk.count, 0) }
        buffer += chunk[..<n]
        return n
    }
}

/// HOST:PORT, an IPv4 address (both ends of a migration and the page servers).
struct MigrationAddress: CustomStringConvertible {
    let host: String
    let port: UInt16
    var description: String { "\(host):\(port)" }

    init(host: String, port: UInt16) { self.host = host; self.port = port }

    init(_ text: String) throws {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else {
            throw CheckpointError(.invalidArgument, "\(text): expected ADDRESS:PORT (IPv4)")
        }
        self.init(host: String(parts[0]), port: port)
    }
}
