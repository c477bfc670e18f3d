// Long-running processes and crit for the system tests of
// NamespaceDump and CgroupDump.
import Foundation
import LinuxKernel
import Images
#if canImport(Glibc)
import Glibc
#endif

/// A long-running process the test owns: started with a shell script that prints "ready"
/// on stdout once set up, then execs into something that waits; killed and reaped by
/// `stop()` (and at the latest on deinit), so a failing test leaves nothing behind.
public final class Sleeper {
    public let pid: Int32
    private var stopped = false

    /// `argv` runs `script` with sh; the script must end with `echo ready; exec sleep ...`.
    public init(_ argv: [String], timeout: Double = 10) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw CheckpointError.errno("pipe") }
        let errPath = NSTemporaryDirectory() + "sleeper-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).err"
        defer { unlink(errPath) }
        defer { close(fds[0]) }
        do {
            pid = try Spawn.start(argv, stdout: .fd(fds[1]), stderr: .file(errPath, append: false))
        } catch {
            close(fds[1])
            throw error
        }
        close(fds[1])
        let line = Self.readLine(fds[0], timeout: timeout)
        guard line == "ready" else {
            stop()
            let errText = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            throw CheckpointError(.invalidState, "\(argv.joined(separator: " ")): not ready (read \"\(line)\"): \(errText)")
        }
    }

    private static func readLine(_ fd: Int32, timeout: Double) -> String {
        var bytes: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 100) <= 0 { continue }
            var c: UInt8 = 0
            if read(fd, &c, 1) <= 0 || c == UInt8(ascii: "\n") { break }
            bytes.append(c)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func stop() {
        guard !stopped else { return }
        stopped = true
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    deinit { stop() }
}

/// Decodes an image with CRIU's crit; throws with crit's message when it cannot.
@discardableResult
public func critDecode(_ path: String) throws -> [String: Any] {
    let r = Cmd.run(["/usr/bin/python3", "/usr/bin/crit", "decode", "-i", path])
    guard r.status == 0, let json = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any] else {
        throw CheckpointError(.image, "crit decode \(path): exit \(r.status): \(r.err)")
    }
    return json
}
