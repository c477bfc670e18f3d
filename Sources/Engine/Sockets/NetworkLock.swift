import Foundation
import LinuxKernel
import Images
import CShim

/// One TCP connection as the lock and the messages name it.
public struct TcpConnection: CustomStringConvertible {
    public let family: Int32
    public let local: String
    public let localPort: UInt32
    public let peer: String
    public let peerPort: UInt32

    public var description: String { "\(Self.endpoint(local, localPort, family)) -> \(Self.endpoint(peer, peerPort, family))" }

    static func endpoint(_ addr: String, _ port: UInt32, _ family: Int32) -> String {
        family == AF_INET6 ? "[\(addr)]:\(port)" : "\(addr):\(port)"
    }
}

/// CRIU's network lock for single connections (its iptables method): while a connection
/// is dumped, and on restore until its socket is back, rules in the connection's network
/// namespace drop its packets both ways, so the peer sees neither a reset from a missing
/// socket nor anything of the restore. The rules are kept after a dump that kills the
/// tree and removed by the restore, or at once when the dump fails or leaves the tree
/// running.
public struct NetworkLock {
    /// A file naming the network namespace of the connections (/proc/PID/ns/net); nil
    /// for our own.
    public let netns: String?

    public init(netns: String?) { self.netns = netns }

    static let comment = "ocicheckpoint-tcp-lock"

    public func lock(_ c: TcpConnection) throws {
        for rule in rules(c) { try iptables(c, ["-I"] + rule, "lock") }
    }

    /// Adds the rules not already there (a killing dump keeps them for the restore);
    /// true when any was added.
    public func lockIfMissing(_ c: TcpConnection) throws -> Bool {
        var added = false
        for rule in rules(c) where (try? iptables(c, ["-C"] + rule, "check")) == nil {
            try iptables(c, ["-I"] + rule, "lock")
            added = true
        }
        return added
    }

    /// Removes the rules; a rule already gone is no error (a second unlock).
    public func unlock(_ c: TcpConnection) throws {
        for rule in rules(c) where (try? iptables(c, ["-C"] + rule, "check")) != nil {
            try iptables(c, ["-D"] + rule, "unlock")
        }
    }

    private func rules(_ c: TcpConnection) -> [[String]] {
        // Segments a restore forges for the connection (TcpSegment) carry the mark.
        let tail = ["-m", "mark", "!", "--mark", "\(TcpSegment.mark)", "-m", "comment", "--comment", Self.comment, "-j", "DROP"]
        return [
            ["INPUT", "-p", "tcp", "-s", c.peer, "--sport", "\(c.peerPort)", "-d", c.local, "--dport", "\(c.localPort)"] + tail,
            ["OUTPUT", "-p", "tcp", "-s", c.local, "--sport", "\(c.localPort)", "-d", c.peer, "--dport", "\(c.peerPort)"] + tail,
        ]
    }

    private func iptables(_ c: TcpConnection, _ args: [String], _ what: String) throws {
        let tool = c.family == AF_INET6 ? "ip6tables" : "iptables"
        let candidates: [String] = ["/usr/sbin/\(tool)", "/sbin/\(tool)"]
        let path = candidates.first { access($0, X_OK) == 0 }
        guard let path else {
            throw CheckpointError(.notFound, "\(what) TCP connection \(c): \(tool) is not installed (apt-get install iptables)")
        }
        var argv: [String] = [path, "-w"] + args
        if let netns { argv = ["/usr/bin/nsenter", "--net=\(netns)"] + argv }
        let (status, output) = try Command.run(argv)
        guard status == 0 else {
            throw CheckpointError(.kernel, "\(what) TCP connection \(c): \(argv.joined(separator: " ")) exited with \(status): \(output)")
        }
    }
}

/// Runs a short command without Foundation's Process (whose child watching could race
/// with the engine's own waitpid calls), stderr and stdout captured.
public enum Command {
    public static func run(_ argv: [String]) throws -> (Int32, String) {
        let fds = try Syscall.pipe("pipe for \(argv[0])")
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1)
        posix_spawn_file_actions_adddup2(&fa, fds[1], 2)
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &fa, nil, cArgs, environ)
        close(fds[1])
        defer { close(fds[0]) }
        if rc != 0 { throw CheckpointError.errno("run \(argv[0])", rc) }
        var output = Data()
        var buf = [UInt8](repeating: 0, count: 4096)
        while case .success(let n) = Syscall.valueOrErrno({ read(fds[0], &buf, buf.count) }), n > 0 {
            output.append(contentsOf: buf[0..<n])
        }
        var st: Int32 = 0
        _ = Syscall.valueOrErrno { waitpid(pid, &st, 0) }
        let status = st & 0x7f == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f)
        let text = String(decoding: output, as: UTF8.self).split(separator: "\n").suffix(2).joined(separator: "; ")
        return (status, text)
    }
}
