// TCP and UDP sockets across a real dump and restore: the `inet` workload serves
// listeners and UDP sockets; the test process is the client on loopback, outside the tree.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("inet sockets", .serialized)
struct InetWorkloadTests {
    static let greeting = 256 * 1024

    @Test("TCP listeners (v4, v6) accept and UDP sockets (bound, connected) receive after restore", arguments: Mode.allCases)
    func listenersAndUDP(_ mode: Mode) async throws {
        let s = try await InetSession.start()
        defer { s.cleanup() }
        let d = await s.dump(["--leave-running"].filter { _ in mode == .leaveRunning })
        try #require(d.status == 0, "dump failed\n\(s.run.diagnostics())")
        let left = mode == .kill ? await s.run.reapOriginal() : await s.run.killOriginal()
        try #require(left.isEmpty, "original processes \(left) still exist")
        let r = await s.restore([])
        try #require(r.status == 0, "restore failed\n\(s.run.diagnostics())")
        s.run.go()
        try s.checkServing()
        try await s.finish()
    }

    @Test("an established connection to a client outside the tree survives with --tcp-established",
          arguments: [AF_INET, AF_INET6])
    func established(_ family: Int32) async throws {
        let s = try await InetSession.start()
        defer { s.cleanup() }
        let client = try TestSocket.connect(family: family, port: family == AF_INET ? s.ports[0] : s.ports[1], rcvbuf: 4096)
        defer { client.close() }
        let before = Data((0..<10000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        try client.send(before)
        await sleep(0.3)  // the greeting fills what the client's small window lets through
        let d = await s.dump(["--tcp-established"])
        try #require(d.status == 0, "dump failed\n\(s.run.diagnostics())")
        try #require(await s.run.reapOriginal().isEmpty)
        #expect(s.lockRules().count == 2, "the connection is locked between dump and restore: \(s.lockRules())")
        try s.critDecodes()
        let r = await s.restore(["--tcp-established"])
        try #require(r.status == 0, "restore failed\n\(s.run.diagnostics())")
        #expect(s.lockRules().isEmpty, "lock rules left after the restore: \(s.lockRules())")
        s.run.go()
        // The greeting (partly in the server's send queue) and then the echo of what sat
        // in its receive queue, in order, on the same connection.
        let got = try client.receive(Self.greeting + before.count, timeout: 15)
        #expect(got.prefix(Self.greeting) == Data((0..<Self.greeting).map { UInt8($0 % 251) }), "greeting damaged")
        #expect(got.suffix(before.count) == before, "the bytes queued before the dump did not come back")
        try client.send(Data("after-restore".utf8))
        #expect(try client.receive(13, timeout: 5) == Data("after-restore".utf8))
        try s.checkServing()
        try await s.finish()
    }

    @Test("without --tcp-established an established connection refuses the dump; the workload keeps running")
    func refusedWithoutFlag() async throws {
        let s = try await InetSession.start()
        defer { s.cleanup() }
        func sockets() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(s.run.rootPid)/fd")) ?? [])
                .filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(s.run.rootPid)/fd/\($0)"))?.hasPrefix("socket:[") == true }.count
        }
        let listening = sockets()
        let client = try TestSocket.connect(family: AF_INET, port: s.ports[0], rcvbuf: 0)
        defer { client.close() }
        // Accepted, so the dump meets an established connection, not one still queued.
        try #require(waitFor(10) { sockets() > listening }, "the workload did not accept the connection")
        let d = await s.dump([])
        #expect(d.status != 0)
        let line = d.stderrLines.last.map(String.init) ?? ""
        #expect(line.contains("pid \(s.run.rootPid) fd ") && line.contains(": TCP connection 127.0.0.1:\(s.ports[0]) -> 127.0.0.1:")
                && line.hasSuffix("is established; dump with --tcp-established"), "\(d)")
        #expect(!FileManager.default.fileExists(atPath: s.run.images + "/inventory.img"))
        #expect(s.run.runningUntraced() == nil)
        #expect(s.lockRules().isEmpty)
        s.run.go()
        _ = try client.receive(Self.greeting, timeout: 10)
        try client.send(Data("still-here".utf8))
        #expect(try client.receive(10, timeout: 5) == Data("still-here".utf8))
        try await s.finish()
    }

    @Test("a leave-running dump with --tcp-established lets the connection go on with the original")
    func leaveRunningEstablished() async throws {
        let s = try await InetSession.start()
        defer { s.cleanup() }
        let client = try TestSocket.connect(family: AF_INET6, port: s.ports[1], rcvbuf: 4096)
        defer { client.close() }
        try client.send(Data("queued".utf8))
        await sleep(0.2)
        let d = await s.dump(["--tcp-established", "--leave-running"])
        try #require(d.status == 0, "dump failed\n\(s.run.diagnostics())")
        #expect(s.run.runningUntraced() == nil)
        #expect(s.lockRules().isEmpty, "lock rules left after a leave-running dump: \(s.lockRules())")
        s.run.go()
        let got = try client.receive(Self.greeting + 6, timeout: 15)
        #expect(got.suffix(6) == Data("queued".utf8))
        try await s.finish()
    }
}

/// One run of the `inet` workload with its UDP peer and the ports it serves.
final class InetSession {
    let run: WorkloadRun
    let udpPeer: TestSocket
    /// L4 L6 U4 U6 as DIR/ports lists them.
    let ports: [Int]

    private init(run: WorkloadRun, udpPeer: TestSocket, ports: [Int]) {
        self.run = run; self.udpPeer = udpPeer; self.ports = ports
    }

    static func start() async throws -> InetSession {
        try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
        let peer = try TestSocket.udp(family: AF_INET6)
        let run = try WorkloadRun(Workload(name: "inet", args: ["\(peer.localPort)"]))
        try run.start()
        try await run.waitReady()
        let ports = (Proc.read(run.dir + "/ports") ?? "").split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        try #require(ports.count == 4, "DIR/ports: \(ports)")
        return InetSession(run: run, udpPeer: peer, ports: ports)
    }

    func dump(_ extra: [String]) async -> CLIResult {
        await CLI.run(["dump", "-t", "\(run.rootPid)", "-D", run.images, "-o", run.dumpLog, "-v4"] + extra, outputDir: run.base)
    }

    func restore(_ extra: [String]) async -> CLIResult {
        await CLI.run(["restore", "-D", run.images, "-d", "--pidfile", run.pidfile, "-o", run.restoreLog, "-v4"] + extra, outputDir: run.base)
    }

    /// New connections on both listeners get the greeting and their echo; both UDP
    /// sockets echo a datagram.
    func checkServing() throws {
        for (family, port) in [(AF_INET, ports[0]), (AF_INET6, ports[1])] {
            let c = try TestSocket.connect(family: family, port: port, rcvbuf: 0)
            defer { c.close() }
            try c.send(Data("ping".utf8))
            let got = try c.receive(InetWorkloadTests.greeting + 4, timeout: 10)
            #expect(got.suffix(4) == Data("ping".utf8), "listener \(port) does not echo")
        }
        let u = try TestSocket.udp(family: AF_INET)
        defer { u.close() }
        try u.sendTo(Data("u4".utf8), port: ports[2])
        #expect(try u.receive(2, timeout: 5) == Data("u4".utf8))
        try udpPeer.sendTo(Data("u6".utf8), port: ports[3])
        #expect(try udpPeer.receive(2, timeout: 5) == Data("u6".utf8))
    }

    /// done → the workload checks its socket options and reports.
    func finish() async throws {
        _ = FileManager.default.createFile(atPath: run.dir + "/done", contents: Data())
        let r = await run.waitResult(timeout: 20)
        #expect(r == "PASS\n", "result \(r ?? "missing")\n\(run.diagnostics())")
    }

    /// Our lock rules (iptables and ip6tables) naming one of the workload's ports.
    func lockRules() -> [String] {
        ["/usr/sbin/iptables", "/usr/sbin/ip6tables"].flatMap { tool -> [String] in
            let out = run.base + "/rules"
            guard let pid = try? Proc.spawn([tool, "-w", "-S"], stdout: out, append: false),
                  Spawn.wait(pid, timeout: 20) != nil else { return [] }
            return (Proc.read(out) ?? "").split(separator: "\n").map(String.init).filter { rule in
                rule.contains("ocicheckpoint-tcp-lock") && ports.prefix(2).contains { rule.contains("port \($0) ") }
            }
        }
    }

    /// crit reads the socket entries and the connection's stream image.
    func critDecodes() throws {
        let streams = ((try? FileManager.default.contentsOfDirectory(atPath: run.images)) ?? []).filter { $0.hasPrefix("tcp-stream-") }
        #expect(streams.count == 1, "tcp-stream images: \(streams)")
        for name in ["files.img"] + streams {
            let out = run.base + "/crit.out"
            let pid = try Proc.spawn([Paths.python, Paths.crit, "decode", "-i", run.images + "/" + name], stdout: out, append: false)
            let st = Spawn.wait(pid, timeout: 60)
            let text = Proc.read(out) ?? ""
            #expect(st?.exited == true && st?.code == 0, "crit decode \(name): \(text.suffix(500))")
            if name == "files.img" { #expect(text.contains("\"INETSK\"") && text.contains("\"state\": 1,"), "\(text.prefix(2000))") }
            else { #expect(text.contains("\"inq_seq\"") && text.contains("\"outq\""), "\(text.prefix(2000))") }
        }
    }

    func cleanup() {
        udpPeer.close()
        run.cleanup()
    }
}

/// A blocking client socket on loopback with a receive timeout.
final class TestSocket {
    let fd: Int32
    let family: Int32

    private init(fd: Int32, family: Int32) { self.fd = fd; self.family = family }

    static func connect(family: Int32, port: Int, rcvbuf: Int32) throws -> TestSocket {
        let s = TestSocket(fd: socket(family, Int32(SOCK_STREAM.rawValue), 0), family: family)
        if rcvbuf > 0 { var v = rcvbuf; setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &v, 4) }
        let a = loopback(family, port)
        guard a.withUnsafeBytes({ Glibc.connect(s.fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(a.count)) }) == 0 else {
            s.close()
            throw TestFailure("connect to port \(port): \(String(cString: strerror(errno)))")
        }
        return s
    }

    static func udp(family: Int32) throws -> TestSocket {
        let s = TestSocket(fd: socket(family, Int32(SOCK_DGRAM.rawValue), 0), family: family)
        let a = loopback(family, 0)
        guard a.withUnsafeBytes({ bind(s.fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(a.count)) }) == 0 else {
            throw TestFailure("bind UDP: \(String(cString: strerror(errno)))")
        }
        return s
    }

    var localPort: Int {
        var b = [UInt8](repeating: 0, count: 28)
        var len = socklen_t(b.count)
        _ = b.withUnsafeMutableBytes { getsockname(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &len) }
        return Int(b[2]) << 8 | Int(b[3])
    }

    static func loopback(_ family: Int32, _ port: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: family == AF_INET6 ? 28 : 16)
        b[0] = UInt8(family); b[2] = UInt8(port >> 8); b[3] = UInt8(port & 0xff)
        if family == AF_INET6 { b[23] = 1 } else { b[4] = 127; b[7] = 1 }
        return b
    }

    func send(_ d: Data) throws {
        var off = 0
        while off < d.count {
            let n = d.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, d.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { throw TestFailure("send: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    func sendTo(_ d: Data, port: Int) throws {
        let a = TestSocket.loopback(family, port)
        let n = d.withUnsafeBytes { p in a.withUnsafeBytes { sendto(fd, p.baseAddress, d.count, 0, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(a.count)) } }
        if n != d.count { throw TestFailure("sendto port \(port): \(String(cString: strerror(errno)))") }
    }

    /// Exactly `count` bytes (or one datagram), waiting at most `timeout` seconds in all.
    func receive(_ count: Int, timeout: Double) throws -> Data {
        let deadline = Date().addingTimeInterval(timeout)
        var out = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < count {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { throw TestFailure("received \(out.count) of \(count) bytes in \(timeout) s") }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, Int32(left * 1000) + 1) <= 0 { continue }
            let n = recv(fd, &buf, min(buf.count, count - out.count), 0)
            if n == 0 { throw TestFailure("connection closed after \(out.count) of \(count) bytes") }
            if n < 0 { if errno == EINTR { continue }; throw TestFailure("recv: \(String(cString: strerror(errno)))") }
            out.append(contentsOf: buf[0..<n])
            if family != 0 && isDatagram { break }
        }
        return out
    }

    private var isDatagram: Bool {
        var t: Int32 = 0
        var l = socklen_t(4)
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l)
        return t == Int32(SOCK_DGRAM.rawValue)
    }

    func close() { Glibc.close(fd) }
}
