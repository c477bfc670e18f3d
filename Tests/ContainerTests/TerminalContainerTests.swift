// A shell on a console: `runc run -d --console-socket` hands the pty master to a socket
// the test listens on; the container's sh reads commands from the slave. After
// `runc --criu ocicheckpoint checkpoint` and `restore -d --console-socket`, a new master
// comes through the second socket (the engine's "orphan-pts-master" notify, forwarded by
// runc) and the same shell answers on it.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The receiving end of runc's --console-socket: a listening unix socket; runc connects
/// and sends the pty master as SCM_RIGHTS.
final class ConsoleSocket {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in path.utf8.prefix(p.count - 1).enumerated() { p[i] = b }
        }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
        guard fd >= 0, ok, listen(fd, 4) == 0 else { throw TestFailure("console socket \(path): \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd); unlink(path) }

    /// The master runc sent (non-blocking), waiting up to `timeout` seconds for it.
    func receiveMaster(timeout: Double = 10) throws -> Int32 {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, Int32(timeout * 1000)) == 1 else { throw TestFailure("nothing connected to \(path)") }
        let conn = accept(fd, nil, nil)
        guard conn >= 0 else { throw TestFailure("accept on \(path): \(String(cString: strerror(errno)))") }
        defer { close(conn) }
        var data = [UInt8](repeating: 0, count: 256)
        var control = [UInt8](repeating: 0, count: 64)
        let n = data.withUnsafeMutableBytes { d in
            control.withUnsafeMutableBytes { c in
                var iov = iovec(iov_base: d.baseAddress, iov_len: d.count)
                return withUnsafeMutablePointer(to: &iov) { iovp in
                    var msg = msghdr()
                    msg.msg_iov = iovp
                    msg.msg_iovlen = 1
                    msg.msg_control = c.baseAddress
                    msg.msg_controllen = c.count
                    return recvmsg(conn, &msg, Int32(MSG_CMSG_CLOEXEC))
                }
            }
        }
        // struct cmsghdr: a size_t length, level, type, then the fds.
        let level = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: Int32.self) }
        let type = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 12, as: Int32.self) }
        guard n >= 0, level == SOL_SOCKET, type == Int32(SCM_RIGHTS) else { throw TestFailure("no fd came through \(path)") }
        let master = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: Int32.self) }
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
        return master
    }
}

/// Types into a pty master and reads what comes back until `needle` shows.
func converse(_ master: Int32, type text: String, until needle: String, timeout: Double = 10) -> String {
    _ = text.withCString { write(master, $0, strlen($0)) }
    var got = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 4096)
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let n = read(master, &buf, buf.count)
        if n > 0 { got += buf[0..<n] } else { usleep(20_000) }
        if String(decoding: got, as: UTF8.self).contains(needle) { break }
    }
    return String(decoding: got, as: UTF8.self)
}

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct TerminalContainerTests {
    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Env.binary),
                     "no engine binary at \(Env.binary): swift build first, or set OCICHECKPOINT_BIN")
    }

    @Test("a shell on a console socket answers again after checkpoint and restore")
    func shellOnConsole() throws {
        let scratch = try Scratch()
        let id = "tty-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        defer {
            Cmd.run([Env.runc, "kill", id, "KILL"], timeout: 10)
            waitFor(5) { let s = Runc(id: id).status; return s == nil || s == "stopped" }
            Cmd.run([Env.runc, "delete", "-f", id], timeout: 20)
            scratch.tearDown()
        }
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: ["sh"]) { config in
            var process = config["process"] as! [String: Any]
            process["terminal"] = true
            config["process"] = process
        }
        let first = try ConsoleSocket(path: scratch.sub("console.sock"))
        let run = Cmd.run([Env.runc, "run", "-d", "--console-socket", first.path, "--bundle", bundle.path, id], timeout: 30)
        try #require(run.ok, "runc run: \(run)")
        let master = try first.receiveMaster()
        defer { close(master) }
        let before = converse(master, type: "echo before\n", until: "\r\nbefore\r\n")
        try #require(before.contains("\r\nbefore\r\n"), "the shell does not answer: \(before.debugDescription)")

        let c = Runc(id: id)
        let images = scratch.sub("images"), work = scratch.sub("work")
        let dump = c.checkpoint(images: images, work: work)
        try #require(dump.ok, "checkpoint: \(dump)\n--- dump.log\n\(tail(work + "/dump.log"))")
        #expect(c.status != "running", "the container still runs after its checkpoint")
        #expect(FileManager.default.fileExists(atPath: images + "/tty-info.img"))

        let second = try ConsoleSocket(path: scratch.sub("console2.sock"))
        let work2 = scratch.sub("work-restore")
        let restore = Cmd.run([Env.runc, "--criu", Env.binary, "restore", "-d", "--console-socket", second.path,
                               "--bundle", bundle.path, "--image-path", images, "--work-path", work2, id], timeout: 60)
        try #require(restore.ok, "restore: \(restore)\n--- restore.log\n\(tail(work2 + "/restore.log"))")
        let newMaster = try second.receiveMaster()
        defer { close(newMaster) }
        let after = converse(newMaster, type: "echo after-$((1+2))\n", until: "\r\nafter-3\r\n")
        #expect(after.contains("\r\nafter-3\r\n"), "no answer on the new console: \(after.debugDescription)\n\(tail(work2 + "/restore.log"))")
        let console = converse(newMaster, type: "tty\n", until: "/dev/pts/0")
        #expect(console.contains("/dev/pts/0"), "tty in the restored shell: \(console.debugDescription)")
    }
}
