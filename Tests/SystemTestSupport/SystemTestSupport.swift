// Shared by the system tests of NamespaceDump and CgroupDump: scratch directories,
// commands, and long-running processes the test owns.
import Foundation
import Engine
#if canImport(Glibc)
import Glibc
#endif

/// A scratch directory removed when the test ends.
public final class Scratch {
    public let path: String
    public init() throws {
        path = NSTemporaryDirectory() + "ocicheckpoint-test-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    public var images: ImageDirectory { ImageDirectory(path: path) }
    public func file(_ name: String) -> String { path + "/" + name }
}

public struct RunResult {
    public let status: Int32
    public let out: String
    public let err: String
}

/// Runs a command to completion, capturing its output.
public func run(_ argv: [String]) throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: argv[0])
    p.arguments = Array(argv.dropFirst())
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return RunResult(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self))
}

/// Runs a command that must succeed; returns its stdout.
@discardableResult
public func must(_ argv: [String]) throws -> String {
    let r = try run(argv)
    guard r.status == 0 else {
        throw CheckpointError(.invalidState, "\(argv.joined(separator: " ")): exit \(r.status): \(r.err)")
    }
    return r.out
}

/// A long-running process the test owns: started with a shell script that prints "ready"
/// on stdout once set up, then execs into something that waits; killed and reaped by
/// `stop()` (and at the latest on deinit), so a failing test leaves nothing behind.
/// posix_spawn and waitpid of our own, not Foundation's Process: its child monitor does
/// not survive the ptrace stops of a seize.
public final class Sleeper {
    public let pid: Int32
    private var stopped = false

    /// `argv` runs `script` with sh; the script must end with `echo ready; exec sleep ...`.
    public init(_ argv: [String], timeout: Double = 10) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw CheckpointError.errno("pipe") }
        let errPath = NSTemporaryDirectory() + "sleeper-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).err"
        defer { unlink(errPath) }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1)
        posix_spawn_file_actions_addopen(&fa, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addclose(&fa, fds[0])
        posix_spawn_file_actions_addclose(&fa, fds[1])
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var child: pid_t = 0
        let r = posix_spawn(&child, argv[0], &fa, nil, &cargs, environ)
        close(fds[1])
        defer { close(fds[0]) }
        guard r == 0 else { throw CheckpointError.errno("posix_spawn \(argv[0])", r) }
        pid = child
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
