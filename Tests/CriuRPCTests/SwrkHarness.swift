// Drives the real `ocicheckpoint swrk 3` as runc does: one end of a SOCK_SEQPACKET
// socketpair becomes its fd 3, requests and answers are criu_req/criu_resp datagrams.

import CriuRPC
import LinuxKernel
import Foundation
import Images
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

enum RPCPaths {
    static var binary: String { Project.binary }
}

/// One `ocicheckpoint swrk 3` process and our end of its socket.
final class SwrkProcess {
    let pid: pid_t
    let socket: RPCSocket
    private var closed = false

    init(logDir: String) throws {
        var sv: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0 else {
            throw TestFailure("socketpair: \(String(cString: strerror(errno)))")
        }
        defer { close(sv[1]) }
        pid = try Spawn.start([RPCPaths.binary, "swrk", "3"], stdout: .file(logDir + "/swrk.out", append: true), fds: [3: sv[1]])
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
        guard r == 1 else { throw TestFailure("no answer from swrk within \(timeout) s") }
        guard let (resp, fds) = try socket.receive(CriuResp.self) else { throw TestFailure("swrk closed the socket") }
        fds.forEach { close($0) }
        return resp
    }

    /// Closes our end and waits for the service's exit status.
    func finish(timeout: Double = 60) -> Int32? {
        if !closed { close(socket.fd); closed = true }
        if let exit = Spawn.wait(pid, timeout: timeout) { return exit.status }
        kill(pid, SIGKILL)
        _ = waitpid(pid, nil, 0)
        return nil
    }

    deinit { if !closed { close(socket.fd) } }
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
        let cc = Cmd.run(["/usr/bin/cc", "-O1", "-o", bin, src], timeout: 120)
        guard cc.ok else { throw TestFailure("cc failed: \(cc)") }
        return bin
    }

    static func count(in dir: String) -> UInt64? {
        guard let s = try? String(contentsOfFile: dir + "/count", encoding: .utf8) else { return nil }
        return UInt64(s.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Starts the counter in `dir` and waits until it has counted past 3.
    static func start(_ bin: String, in dir: String) throws -> pid_t {
        let pid = try Spawn.start([bin, dir], stdout: .file(dir + "/counter.out", append: true))
        guard waitFor(10, { (count(in: dir) ?? 0) > 3 }) else {
            kill(pid, SIGKILL)
            _ = waitpid(pid, nil, 0)
            throw TestFailure("counter \(pid) did not start counting")
        }
        return pid
    }
}

/// "State" and "TracerPid" from /proc/PID/status.
func processStatus(_ pid: pid_t) -> (state: String, tracer: String)? {
    let fields = procStatus(pid)
    guard !fields.isEmpty else { return nil }
    return (fields["State"] ?? "", fields["TracerPid"] ?? "")
}

func openDirectory(_ path: String) throws -> Int32 {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw TestFailure("open \(path): \(String(cString: strerror(errno)))") }
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
