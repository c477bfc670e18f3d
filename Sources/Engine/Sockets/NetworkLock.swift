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

/// How connections are locked: CRIU's --network-lock.
public enum NetworkLockMethod: String, Sendable {
    case iptables, nftables, skip
}

/// CRIU's network lock for single connections: while a connection is dumped, and on
/// restore until its socket is back, rules in the connection's network namespace drop
/// its packets both ways, so the peer sees neither a reset from a missing socket nor
/// anything of the restore. The rules are kept after a dump that kills the tree and
/// removed by the restore, or at once when the dump fails or leaves the tree running.
/// iptables: two DROP rules per connection in INPUT and OUTPUT. nftables: the same two in
/// base chains of a table of our own, named by a comment per connection; they match no
/// conntrack state, so what other tables do with conntrack changes nothing. skip: the
/// caller locks the network itself (runc does, for a container's namespace).
public struct NetworkLock {
    /// A file naming the network namespace of the connections (/proc/PID/ns/net); nil
    /// for our own.
    public let netns: String?
    public let method: NetworkLockMethod

    public init(netns: String?, method: NetworkLockMethod = .iptables) {
        self.netns = netns
        self.method = method
    }

    static let comment = "ocicheckpoint-tcp-lock"
    static let table = "ocicheckpoint-lock"

    public func lock(_ c: TcpConnection) throws {
        switch method {
        case .iptables: try iptables(c, rules(c).map { ["-I"] + $0 }, "lock")
        case .nftables: try nftLock(c)
        case .skip: break
        }
    }

    /// Adds the rules not already there (a killing dump keeps them for the restore);
    /// true when any was added.
    public func lockIfMissing(_ c: TcpConnection) throws -> Bool {
        switch method {
        case .iptables:
            let missing = rules(c).filter { (try? iptables(c, ["-C"] + $0, "check")) == nil }
            if !missing.isEmpty { try iptables(c, missing.map { ["-I"] + $0 }, "lock") }
            return !missing.isEmpty
        case .nftables:
            if try !nftHandles(c).isEmpty { return false }
            try nftLock(c)
            return true
        case .skip: return false
        }
    }

    /// Removes the rules; a rule already gone is no error (a second unlock). `present`:
    /// the caller made sure they are there (lockIfMissing), no need to look first.
    public func unlock(_ c: TcpConnection, present: Bool = false) throws {
        switch method {
        case .iptables:
            let there = rules(c).filter { present || (try? iptables(c, ["-C"] + $0, "check")) != nil }
            if !there.isEmpty { try iptables(c, there.map { ["-D"] + $0 }, "unlock") }
        case .nftables:
            for (chain, handle) in try nftHandles(c) {
                try run(c, ["nft", "delete", "rule", "inet", Self.table, chain, "handle", handle], "unlock")
            }
            // The last connection out takes the table along.
            let (status, text) = try Command.run(prefix + [tool("nft"), "list", "table", "inet", Self.table], lines: .max)
            if status == 0 && !text.contains(Self.comment) {
                try run(c, ["nft", "delete", "table", "inet", Self.table], "unlock")
            }
        case .skip: break
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
        try run(c, [c.family == AF_INET6 ? "ip6tables" : "iptables", "-w"] + args, what)
    }

    /// Several commands in one iptables-restore (one process and one ruleset commit: each
    /// run costs milliseconds, and the dump's are frozen time).
    private func iptables(_ c: TcpConnection, _ commands: [[String]], _ what: String) throws {
        let input = (["*filter"] + commands.map { $0.joined(separator: " ") } + ["COMMIT", ""]).joined(separator: "\n")
        try run(c, [c.family == AF_INET6 ? "ip6tables-restore" : "iptables-restore", "-w", "--noflush"], what, input: input)
    }

    private func nftComment(_ c: TcpConnection) -> String { "\(Self.comment) \(c)" }

    private func nftLock(_ c: TcpConnection) throws {
        let ip = c.family == AF_INET6 ? "ip6" : "ip"
        try run(c, ["nft", "add", "table", "inet", Self.table], "lock")
        for (chain, hook) in [("input", "input"), ("output", "output")] {
            try run(c, ["nft", "add", "chain", "inet", Self.table, chain, "{ type filter hook \(hook) priority -150 ; policy accept ; }"], "lock")
        }
        let mark = "meta mark != \(TcpSegment.mark) drop comment \"\(nftComment(c))\""
        try run(c, ["nft", "add rule inet \(Self.table) input \(ip) saddr \(c.peer) \(ip) daddr \(c.local) tcp sport \(c.peerPort) tcp dport \(c.localPort) \(mark)"], "lock")
        try run(c, ["nft", "add rule inet \(Self.table) output \(ip) saddr \(c.local) \(ip) daddr \(c.peer) tcp sport \(c.localPort) tcp dport \(c.peerPort) \(mark)"], "lock")
    }

    /// The rules of the connection in our table, as (chain, handle).
    private func nftHandles(_ c: TcpConnection) throws -> [(String, String)] {
        let (status, text) = try Command.run(prefix + [tool("nft"), "-a", "list", "table", "inet", Self.table], lines: .max)
        guard status == 0 else { return [] }  // no table: no rules
        var chain = "", out: [(String, String)] = []
        let tag = "comment \"\(nftComment(c))\""
        for line in text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("chain ") { chain = String(t.dropFirst(6).prefix { $0 != " " }) }
            if t.contains(tag), let r = t.range(of: "# handle ") { out.append((chain, String(t[r.upperBound...]))) }
        }
        return out
    }

    private var prefix: [String] { netns.map { ["/usr/bin/nsenter", "--net=\($0)"] } ?? [] }

    private func tool(_ name: String) -> String {
        ["/usr/sbin/\(name)", "/sbin/\(name)"].first { access($0, X_OK) == 0 } ?? name
    }

    private func run(_ c: TcpConnection, _ args: [String], _ what: String, input: String? = nil) throws {
        let path = tool(args[0])
        guard path.hasPrefix("/") else {
            throw CheckpointError(.notFound, "\(what) TCP connection \(c): \(args[0]) is not installed")
        }
        let argv = prefix + [path] + args.dropFirst()
        let (status, output) = try Command.run(argv, input: input)
        guard status == 0 else {
            throw CheckpointError(.kernel, "\(what) TCP connection \(c): \(argv.joined(separator: " ")) exited with \(status): \(output)")
        }
    }
}

/// Runs a short command without Foundation's Process (whose child watching could race
/// with the engine's own waitpid calls), stderr and stdout captured.
public enum Command {
    /// The last `lines` lines of the output come back.
    /// `input`, if any, is its stdin (small: it must fit in a pipe).
    public static func run(_ argv: [String], lines: Int = 2, input: String? = nil) throws -> (Int32, String) {
        let fds = try Syscall.pipe("pipe for \(argv[0])")
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        var stdinEnd: Int32 = -1
        defer { if stdinEnd >= 0 { close(stdinEnd) } }
        if let input {
            let stdin = try Syscall.pipe("stdin pipe for \(argv[0])")
            stdinEnd = stdin[0]
            let bytes = Array(input.utf8)
            let written = write(stdin[1], bytes, bytes.count)
            close(stdin[1])
            if written != bytes.count { throw CheckpointError.errno("write the input of \(argv[0])") }
            posix_spawn_file_actions_adddup2(&fa, stdin[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        }
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
        let text = String(decoding: output, as: UTF8.self).split(separator: "\n").suffix(lines).joined(separator: lines == 2 ? "; " : "\n")
        return (status, text)
    }
}
