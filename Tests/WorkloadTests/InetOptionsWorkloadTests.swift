// CRIU's TCP options across a real dump and restore: --tcp-close, --skip-in-flight and
// --network-lock (iptables, nftables, skip).

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("inet options", .serialized)
struct InetOptionsWorkloadTests {
    @Test("--tcp-close: connections are dumped unlocked and come back closed, options kept", arguments: Mode.allCases)
    func tcpClose(_ mode: Mode) async throws {
        try await checkpointRestore(Workload(name: "tcp-close", args: ["closed"]), mode, dump: ["--tcp-close"], restore: ["--tcp-close"]) { run in
            #expect(LockRules(run).all().isEmpty, "a --tcp-close dump locked connections: \(LockRules(run).all())")
        }
    }

    @Test("--network-lock nftables, with conntrack rules of another table present", arguments: Mode.allCases)
    func nftables(_ mode: Mode) async throws {
        let conntrack = ["add table inet ocw-conntrack"] + ["input", "output"].flatMap { hook in [
            "add chain inet ocw-conntrack \(hook) { type filter hook \(hook) priority 0 ; }",
            "add rule inet ocw-conntrack \(hook) ct state invalid counter drop",
            "add rule inet ocw-conntrack \(hook) ct state established,related counter accept",
        ] }
        try #require(conntrack.allSatisfy(Tool.nft), "nft could not add the conntrack table")
        defer { _ = Tool.nft("delete table inet ocw-conntrack") }
        let lock = ["--tcp-established", "--network-lock", "nftables"]
        try await checkpointRestore(.tcpStates("4"), mode, dump: lock, restore: lock) { run in
            let rules = LockRules(run)
            #expect(rules.iptables().isEmpty, "nftables lock wrote iptables rules: \(rules.iptables())")
            // Ten connections (p1-p4, p6, both ends), two rules each.
            if mode == .kill { #expect(rules.nftables().count == 20, "nft rules between dump and restore: \(rules.nftables())") }
        }
        #expect(!Tool.run(["/usr/sbin/nft", "list", "tables"]).1.contains("ocicheckpoint-lock"), "the lock table is left")
    }

    @Test("--network-lock skip: no rules at all; connections not yet accepted still come back")
    func skipLock() async throws {
        let skip = ["--tcp-established", "--network-lock", "skip"]
        try await checkpointRestore(Workload(name: "tcp-inflight"), .kill, dump: skip, restore: skip) { run in
            #expect(LockRules(run).all().isEmpty, "--network-lock skip locked: \(LockRules(run).all())")
        }
    }

    @Test("--skip-in-flight: a leave-running dump leaves connections not yet accepted where they are")
    func skipInFlight() async throws {
        let run = try WorkloadRun(Workload(name: "tcp-inflight"))
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let d = await CLI.run(["dump", "-t", "\(run.rootPid)", "-D", run.images, "-o", run.dumpLog, "-v4", "--tcp-established",
                               "--skip-in-flight", "--leave-running"], outputDir: run.base)
        try #require(d.status == 0, "dump failed\n\(d)\n\(run.diagnostics())")
        #expect((Proc.read(run.dumpLog) ?? "").contains("2 connections not yet accepted are left out (--skip-in-flight)"))
        #expect(run.runningUntraced() == nil)
        await run.expectPass("tcp-inflight after a --skip-in-flight dump")
    }
}

/// Our lock rules as iptables/ip6tables and nft list them, for connections of the run's
/// listener (DIR/port): other suites lock connections of their own meanwhile.
struct LockRules {
    let port: String

    init(_ run: WorkloadRun) { port = (Proc.read(run.dir + "/port") ?? "?").trimmingCharacters(in: .whitespacesAndNewlines) }

    private func ours(_ text: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { $0.contains("ocicheckpoint-tcp-lock") && $0.contains("port \(port) ") }
    }

    func iptables() -> [String] {
        ["/usr/sbin/iptables", "/usr/sbin/ip6tables"].flatMap { ours(Tool.run([$0, "-w", "-S"]).1) }
    }

    func nftables() -> [String] { ours(Tool.run(["/usr/sbin/nft", "list", "table", "inet", "ocicheckpoint-lock"]).1) }

    func all() -> [String] { iptables() + nftables() }
}

/// A short command's status and output.
enum Tool {
    static func run(_ argv: [String]) -> (Int32, String) {
        let out = "/tmp/ocw-tool-\(getpid())-\(UUID().uuidString.prefix(6))"
        defer { unlink(out) }
        guard let pid = try? Proc.spawn(argv, stdout: out, append: false), let st = Spawn.wait(pid, timeout: 20) else { return (-1, "") }
        return (st.exited ? st.code : -1, Proc.read(out) ?? "")
    }

    static func nft(_ command: String) -> Bool { run(["/usr/sbin/nft", command]).0 == 0 }
}

@Suite("inet socket kinds", .serialized)
struct InetKindsWorkloadTests {
    @Test("raw IPv4/IPv6 and IPPROTO_RAW sockets, UDP-lite, IP and IPv6 options, IP_FREEBIND to an absent address, a BPF filter",
          arguments: Mode.allCases)
    func kinds(_ mode: Mode) async throws {
        try await checkpointRestore(Workload(name: "inet-kinds"), mode)
    }
}

extension InetKindsWorkloadTests {
    /// Ping sockets need the group in net.ipv4.ping_group_range ("1 0", nobody, by default).
    static func withPingAllowed(_ body: () async throws -> Void) async throws {
        let path = "/proc/sys/net/ipv4/ping_group_range"
        let before = Proc.read(path) ?? "1\t0\n"
        try "0 0".write(toFile: path, atomically: false, encoding: .utf8)
        defer { try? before.write(toFile: path, atomically: false, encoding: .utf8) }
        try await body()
    }

    @Test("ICMP echo sockets (IPv4, IPv6) keep their identifiers and get replies", arguments: Mode.allCases)
    func ping(_ mode: Mode) async throws {
        try await Self.withPingAllowed { try await checkpointRestore(Workload(name: "inet-ping"), mode) }
    }

    @Test("a multicast membership for chosen sources only refuses the dump in one line; the workload runs on",
          arguments: [("ssm", "it joined the multicast group 239.1.2.3 (interface 1) with a source filter, which is not carried")])
    func uncarried(_ arg: String, _ message: String) async throws {
        try await Self.withPingAllowed {
            let run = try WorkloadRun(Workload(name: "inet-ping", args: [arg]))
            defer { run.cleanup() }
            try run.start()
            try await run.waitReady()
            let d = await run.dump(leaveRunning: false)
            #expect(d.status != 0)
            #expect(d.stderrLines.last?.hasSuffix(message) == true, "\(d)")
            #expect(run.runningUntraced() == nil)
            await run.expectPass("inet-ping after a refused dump")
        }
    }
}
