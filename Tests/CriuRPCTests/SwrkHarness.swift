// Drives the real `ocicheckpoint swrk 3` as runc does: one end of a SOCK_SEQPACKET
// socketpair becomes its fd 3, requests and answers are criu_req/criu_resp datagrams.

import CriuRPC
import Engine
import Foundation
import Images
import Testing
#if canImport(Glibc)
import Glibc
#endif

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

enum RPCPaths {
    /// Tests/CriuRPCTests/SwrkHarness.swift → package root.
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static var binary: String {
        if let b = ProcessInfo.processInfo.environment["OCICHECKPOINT_BIN"], !b.isEmpty { return b }
        return packageRoot + "/.build/debug/ocicheckpoint"
    }
}

/// A scratch directory under /tmp, removed by `remove()`.
struct Scratch {
    let path: String
    init(_ name: String) throws {
        var template = Array("/tmp/criurpc-\(name)-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw HarnessError("mkdtemp: \(String(cString: strerror(errno)))") }
        path = String(cString: p)
    }
    func sub(_ name: String) throws -> String {
        let p = path + "/" + name
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// One `ocicheckpoint swrk 3` process and our end of its socket.
final class SwrkProcess {
    let pid: pid_t
    let socket: RPCSocket
    private var closed = false

    init(logDir: String) throws {
        var sv: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0 else {
            throw HarnessError("socketpair: \(String(cString: strerror(errno)))")
        }
        defer { close(sv[1]) }
        pid = try Spawn.run([RPCPaths.binary, "swrk", "3"], fd3: sv[1], output: logDir + "/swrk.out")
        socket = RPCSocket(fd: sv[0])
    }

    /// Sends `req`; answers each NOTIFY with `answer(script)` (recording script and pid)
    /// until the final response.
    func call(_ req: CriuReq, notifications: inout [(String, Int32?)],
              answer: (String) -> Bool = { _ in true }) throws -> CriuResp {
        try socket.send(req)
        while true {
            let resp = try receive()
            guard resp.type == .notify else { return resp }
            notifications.append((resp.notify.script, resp.notify.hasPid ? resp.notify.pid : nil))
            var ack = CriuReq()
            ack.type = .notify
            ack.notifySuccess = answer(resp.notify.script)
            try socket.send(ack)
        }
    }

    func call(_ req: CriuReq) throws -> CriuResp {
        var ignored: [(String, Int32?)] = []
        return try call(req, notifications: &ignored)
    }

    /// The next response, waiting at most `timeout` seconds.
    func receive(timeout: Int32 = 120) throws -> CriuResp {
        var p = pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, timeout * 1000)
        guard r == 1 else { throw HarnessError("no answer from swrk within \(timeout) s") }
        guard let (resp, fds) = try socket.receive(CriuResp.self) else { throw HarnessError("swrk closed the socket") }
        fds.forEach { close($0) }
        return resp
    }

    /// Closes our end and waits for the service's exit status.
    func finish(timeout: Double = 60) -> Int32? {
        if !closed { close(socket.fd); closed = true }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var st: Int32 = 0
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid { return st & 0x7f == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f) }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        _ = waitpid(pid, nil, 0)
        return nil
    }

    deinit { if !closed { close(socket.fd) } }
}

enum Spawn {
    /// posix_spawn with stdin from /dev/null, stdout+stderr to `output`, optionally `fd3`
    /// as fd 3, every other descriptor closed.
    static func run(_ argv: [String], fd3: Int32? = nil, output: String) throws -> pid_t {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        var src = fd3 ?? -1
        if let fd3, fd3 == 3 {
            // dup2 onto itself would keep close-on-exec: go through another number.
            src = fcntl(fd3, F_DUPFD_CLOEXEC, 10)
        }
        defer { if src != (fd3 ?? -1) { close(src) } }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&fa, 1, 2)
        if src >= 0 { posix_spawn_file_actions_adddup2(&fa, src, 3) }
        if let closefrom = closeFrom { _ = closefrom(&fa, src >= 0 ? 4 : 3) }

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &fa, &attr, cArgs, cEnv)
        guard rc == 0 else { throw HarnessError("posix_spawn \(argv[0]): \(String(cString: strerror(rc)))") }
        return pid
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    // glibc 2.34+, not imported into Swift.
    private static let closeFrom: CloseFrom? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(sym, to: CloseFrom.self)
    }()
}

/// The test workload: setsid(), then count in memory and publish the count to DIR/count
/// every 20 ms. A restored copy continues from the dumped count.
enum Counter {
    static let source = """
    #define _GNU_SOURCE
    #include <fcntl.h>
    #include <stdio.h>
    #include <unistd.h>
    int main(int argc, char **argv) {
        if (setsid() < 0 || argc < 2 || chdir(argv[1]) != 0) return 2;
        unsigned long n = 0;
        for (;;) {
            n++;
            int fd = open("count.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) return 3;
            dprintf(fd, "%lu\\n", n);
            close(fd);
            rename("count.tmp", "count");
            usleep(20000);
        }
    }
    """

    /// Compiles the counter into `dir` once per call; returns the binary's path.
    static func build(in dir: String) throws -> String {
        let src = dir + "/counter.c", bin = dir + "/counter"
        try source.write(toFile: src, atomically: true, encoding: .utf8)
        let pid = try Spawn.run(["/usr/bin/cc", "-O1", "-o", bin, src], output: dir + "/cc.out")
        var st: Int32 = 0
        waitpid(pid, &st, 0)
        guard st == 0 else {
            throw HarnessError("cc failed: \((try? String(contentsOfFile: dir + "/cc.out", encoding: .utf8)) ?? "")")
        }
        return bin
    }

    static func count(in dir: String) -> UInt64? {
        guard let s = try? String(contentsOfFile: dir + "/count", encoding: .utf8) else { return nil }
        return UInt64(s.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Starts the counter in `dir` and waits until it has counted past 3.
    static func start(_ bin: String, in dir: String) throws -> pid_t {
        let pid = try Spawn.run([bin, dir], output: dir + "/counter.out")
        guard waitFor(timeout: 10, { (count(in: dir) ?? 0) > 3 }) else {
            kill(pid, SIGKILL)
            _ = waitpid(pid, nil, 0)
            throw HarnessError("counter \(pid) did not start counting")
        }
        return pid
    }
}

@discardableResult
func waitFor(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

/// "State" and "TracerPid" from /proc/PID/status.
func processStatus(_ pid: pid_t) -> (state: String, tracer: String)? {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    var state = "", tracer = ""
    for line in s.split(separator: "\n") {
        if line.hasPrefix("State:") { state = line.dropFirst(6).trimmingCharacters(in: .whitespaces) }
        if line.hasPrefix("TracerPid:") { tracer = line.dropFirst(10).trimmingCharacters(in: .whitespaces) }
    }
    return (state, tracer)
}

func openDirectory(_ path: String) throws -> Int32 {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw HarnessError("open \(path): \(String(cString: strerror(errno)))") }
    return fd
}

func request(_ type: CriuReqType, _ configure: (inout CriuOpts) -> Void = { _ in }) -> CriuReq {
    var req = CriuReq()
    req.type = type
    if type == .dump || type == .restore {
        var opts = CriuOpts()
        configure(&opts)
        req.opts = opts
    }
    return req
}
