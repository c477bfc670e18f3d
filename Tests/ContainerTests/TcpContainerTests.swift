// runc containers with TCP connections: the container runs in a network namespace of its
// own (config.json namespaces network with a path, made with `ip netns add` and joined to
// the host by a veth pair), which runc hands to us as an external namespace; a client on
// the host keeps one connection open across `runc checkpoint/restore --tcp-established`.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct TcpContainerTests {
    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Env.binary),
                     "no engine binary at \(Env.binary): swift build first, or set OCICHECKPOINT_BIN")
    }

    @Test func echoServerKeepsItsConnectionAcrossCheckpointAndRestore() throws {
        let net = try TestNetwork()
        defer { net.tearDown() }
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = net.name
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: ["nc", "-ll", "-p", "5000", "-e", "/bin/cat"]) {
            net.join(&$0)
        }
        try bundle.run(id: id)
        defer { Cmd.run([Env.runc, "delete", "-f", id], timeout: 20) }
        let c = Runc(id: id)
        let client = try #require(waitForConnection(net.containerAddress, 5000), "no echo server: \(tail(bundle.path + "/run.err"))")
        defer { close(client) }
        try #require(echo(client, "hello\n") == "hello\n")

        // Without the flag the checkpoint is refused and the container keeps serving.
        let images0 = scratch.sub("images0"), work0 = scratch.sub("work0")
        let refused = c.checkpoint(images: images0, work: work0)
        #expect(!refused.ok)
        #expect(tail(work0 + "/dump.log").contains("is established; dump with --tcp-established"), "\(tail(work0 + "/dump.log"))")
        #expect(c.status == "running")
        #expect(echo(client, "still\n") == "still\n")

        let images = scratch.sub("images"), work = scratch.sub("work")
        let dump = c.checkpoint(images: images, work: work, extra: ["--tcp-established"])
        try #require(dump.ok, "checkpoint: \(dump)\n\(tail(work + "/dump.log"))")
        #expect(c.status != "running")
        let dumpLog = readFile(work + "/dump.log") ?? ""
        #expect(dumpLog.contains("net namespace of pid") && dumpLog.contains("external, key extRootNetNS"), "\(tail(work + "/dump.log", 40))")
        #expect(dumpLog.contains("locked and in repair mode"), "\(tail(work + "/dump.log", 40))")
        #expect(net.lockRules().count == 2, "the connection is locked while checkpointed: \(net.lockRules())")
        let restoreWork = scratch.sub("work-restore")
        let restore = Cmd.run([Env.runc, "--criu", Env.binary, "restore", "-d", "--tcp-established", "--bundle", bundle.path,
                               "--image-path", images, "--work-path", restoreWork, id], timeout: 60)
        try #require(restore.ok, "restore: \(restore)\n\(tail(restoreWork + "/restore.log"))")
        #expect(c.status == "running")
        #expect(echo(client, "after restore\n") == "after restore\n", "\(tail(restoreWork + "/restore.log"))")
        #expect((readFile(restoreWork + "/restore.log") ?? "").contains("joins the external net namespace extRootNetNS"))
        #expect(net.lockRules().isEmpty, "lock rules left in \(net.name): \(net.lockRules())")
    }
}

extension TcpContainerTests {
    /// Debian's redis-server with its libraries in a busybox rootfs: keys written before
    /// the checkpoint are read back after the restore on the connection opened before it.
    /// redis waits in epoll_wait: the test runs once the engine dumps epoll fds.
    @Test(.enabled(if: engineDumpsEpoll(), "the engine does not dump epoll fds yet (redis needs them)"))
    func redisKeepsItsKeysAndItsClient() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server"), "apt-get install redis-server")
        let net = try TestNetwork()
        defer { net.tearDown() }
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = net.name
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: [
            "/bin/redis-server", "--bind", "0.0.0.0", "--port", "6379", "--protected-mode", "no",
            "--save", "", "--appendonly", "no", "--dir", "/tmp",
        ]) { net.join(&$0) }
        try copyWithLibraries("/usr/bin/redis-server", as: "/bin/redis-server", into: bundle.rootfs)
        try bundle.run(id: id)
        defer { Cmd.run([Env.runc, "delete", "-f", id], timeout: 20) }
        let c = Runc(id: id)
        let client = try #require(waitForConnection(net.containerAddress, 6379), "no redis: \(tail(bundle.path + "/run.out")) \(tail(bundle.path + "/run.err"))")
        defer { close(client) }
        try #require(resp(client, ["SET", "greeting", "hello from before"]) == "+OK\r\n")
        try #require(resp(client, ["RPUSH", "list", "a", "b", "c"]) == ":3\r\n")

        let images = scratch.sub("images"), work = scratch.sub("work")
        let dump = c.checkpoint(images: images, work: work, extra: ["--tcp-established"])
        try #require(dump.ok, "checkpoint: \(dump)\n\(tail(work + "/dump.log"))")
        let restoreWork = scratch.sub("work-restore")
        let restore = Cmd.run([Env.runc, "--criu", Env.binary, "restore", "-d", "--tcp-established", "--bundle", bundle.path,
                               "--image-path", images, "--work-path", restoreWork, id], timeout: 60)
        try #require(restore.ok, "restore: \(restore)\n\(tail(restoreWork + "/restore.log"))")
        #expect(c.status == "running")
        #expect(resp(client, ["GET", "greeting"]) == "$17\r\nhello from before\r\n", "\(tail(bundle.path + "/run.out"))")
        #expect(resp(client, ["LRANGE", "list", "0", "-1"]) == "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n")
        #expect(resp(client, ["SET", "greeting", "after"]) == "+OK\r\n")
        let second = try #require(waitForConnection(net.containerAddress, 6379), "redis accepts no new connection")
        defer { close(second) }
        #expect(resp(second, ["GET", "greeting"]) == "$5\r\nafter\r\n")
    }
}

/// Whether the engine dumps a process holding an epoll fd (a leave-running dump of a
/// python sleeping with one open).
func engineDumpsEpoll() -> Bool {
    guard FileManager.default.isExecutableFile(atPath: Env.binary) else { return false }
    let dir = "/tmp/inet-epoll-probe-\(getpid())"
    defer { Cmd.run(["/bin/rm", "-rf", dir]) }
    let start = Cmd.sh("/usr/bin/python3 -c 'import select,time; e=select.epoll(); time.sleep(60)' </dev/null >/dev/null 2>&1 & echo $!")
    guard let pid = Int32(start.out.trimmingCharacters(in: .whitespacesAndNewlines)) else { return false }
    defer { kill(pid, SIGKILL) }
    usleep(300_000)
    return Cmd.run([Env.binary, "dump", "-t", "\(pid)", "-D", dir, "--leave-running", "--shell-job"], timeout: 30).ok
}

/// Copies `binary` to ROOTFS/`as` and every library ldd names to the same path in ROOTFS.
func copyWithLibraries(_ binary: String, as target: String, into rootfs: String) throws {
    let ldd = Cmd.run(["/usr/bin/ldd", binary])
    guard ldd.ok else { throw TestFailure("ldd: \(ldd)") }
    var files = [(binary, target)]
    for line in ldd.out.split(separator: "\n") {
        let path = line.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("/") }
        if let p = path { files.append((String(p), String(p))) }
    }
    for (from, to) in files {
        let dest = rootfs + to
        try FileManager.default.createDirectory(atPath: (dest as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let cp = Cmd.run(["/bin/cp", "-L", from, dest])
        guard cp.ok else { throw TestFailure("cp: \(cp)") }
    }
}

/// One RESP command and its whole reply as text (nil on error or timeout).
func resp(_ fd: Int32, _ args: [String]) -> String? {
    var req = "*\(args.count)\r\n"
    for a in args { req += "$\(a.utf8.count)\r\n\(a)\r\n" }
    let bytes = Array(req.utf8)
    guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { return nil }
    var got: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while !respComplete(got) {
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { return nil }
        got += buf[0..<n]
    }
    return String(decoding: got, as: UTF8.self)
}

/// Whether `b` holds one whole RESP reply (simple, integer, bulk or an array of those).
func respComplete(_ b: [UInt8]) -> Bool {
    var i = 0
    func line() -> String? {
        guard let end = (i..<max(i, b.count - 1)).first(where: { b[$0] == 13 && b[$0 + 1] == 10 }) else { return nil }
        defer { i = end + 2 }
        return String(decoding: b[i..<end], as: UTF8.self)
    }
    func value() -> Bool {
        guard let l = line(), let kind = l.first else { return false }
        let n = Int(l.dropFirst()) ?? 0
        switch kind {
        case "$": if n < 0 { return true }; i += n + 2; return i <= b.count
        case "*": return n <= 0 || (0..<n).allSatisfy { _ in value() }
        default: return true
        }
    }
    return value()
}

/// A network namespace `inet-XXXXXX` with a veth pair to the host: 10.254.N.1 on the host
/// side, 10.254.N.2 in the namespace (N random, a /30 of our own).
struct TestNetwork {
    let name: String
    let subnet: Int
    var hostAddress: String { "10.254.\(subnet).1" }
    var containerAddress: String { "10.254.\(subnet).2" }
    var path: String { "/var/run/netns/\(name)" }

    init() throws {
        name = "inet-" + String(format: "%06x", UInt32.random(in: 0...0xffffff))
        subnet = Int.random(in: 1...250)
        let ip = "/usr/sbin/ip"
        let steps: [[String]] = [
            [ip, "netns", "add", name],
            [ip, "link", "add", name + "h", "type", "veth", "peer", "name", name + "c"],
            [ip, "link", "set", name + "c", "netns", name],
            [ip, "addr", "add", hostAddress + "/30", "dev", name + "h"],
            [ip, "link", "set", name + "h", "up"],
            [ip, "-n", name, "addr", "add", containerAddress + "/30", "dev", name + "c"],
            [ip, "-n", name, "link", "set", name + "c", "up"],
            [ip, "-n", name, "link", "set", "lo", "up"],
        ]
        for s in steps {
            let o = Cmd.run(s)
            if !o.ok { tearDown(); throw TestFailure("\(o)") }
        }
    }

    /// config.json: the network namespace is this one.
    func join(_ config: inout [String: Any]) {
        var linux = config["linux"] as! [String: Any]
        var namespaces = linux["namespaces"] as! [[String: Any]]
        namespaces.removeAll { $0["type"] as? String == "network" }
        namespaces.append(["type": "network", "path": path])
        linux["namespaces"] = namespaces
        config["linux"] = linux
    }

    func lockRules() -> [String] {
        let o = Cmd.run(["/usr/sbin/ip", "netns", "exec", name, "/usr/sbin/iptables", "-w", "-S"])
        return o.out.split(separator: "\n").map(String.init).filter { $0.contains("ocicheckpoint-tcp-lock") }
    }

    func tearDown() {
        Cmd.run(["/usr/sbin/ip", "link", "del", name + "h"])
        Cmd.run(["/usr/sbin/ip", "netns", "del", name])
    }
}

/// A connected TCP socket to addr:port, retried until the server listens (nil after 10 s).
func waitForConnection(_ addr: String, _ port: UInt16) -> Int32? {
    var result: Int32?
    waitFor(10) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        inet_pton(AF_INET, addr, &sa.sin_addr)
        let r = withUnsafePointer(to: &sa) { connect(fd, UnsafeRawPointer($0).assumingMemoryBound(to: sockaddr.self), socklen_t(MemoryLayout<sockaddr_in>.size)) }
        if r == 0 { result = fd; return true }
        close(fd)
        return false
    }
    if let fd = result {
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
    return result
}

/// Sends `text` and reads back as many bytes (nil on error or timeout).
func echo(_ fd: Int32, _ text: String) -> String? {
    let bytes = Array(text.utf8)
    guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { return nil }
    var got: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while got.count < bytes.count {
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { return got.isEmpty ? nil : String(decoding: got, as: UTF8.self) }
        got += buf[0..<n]
    }
    return String(decoding: got, as: UTF8.self)
}
