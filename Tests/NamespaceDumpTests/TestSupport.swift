import Foundation
import Testing
import Engine
#if canImport(Glibc)
import Glibc
#endif

/// A scratch directory removed when the test ends.
final class Scratch {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "ocicheckpoint-ns-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    var images: ImageDirectory { ImageDirectory(path: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

struct RunResult {
    let status: Int32
    let out: String
    let err: String
}

/// Runs a command to completion, capturing its output.
func run(_ argv: [String]) throws -> RunResult {
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
func must(_ argv: [String]) throws -> String {
    let r = try run(argv)
    guard r.status == 0 else {
        throw CheckpointError(.invalidState, "\(argv.joined(separator: " ")): exit \(r.status): \(r.err)")
    }
    return r.out
}

/// A long-running process the test owns: started with a shell script that prints "ready"
/// on stdout once set up, then execs into something that waits; killed and reaped by
/// `stop()` (and at the latest on deinit), so a failing test leaves nothing behind.
final class Sleeper {
    let process = Process()
    let pid: Int32
    private var stopped = false

    /// `argv` runs `script` with sh; the script must end with `echo ready; exec sleep ...`.
    init(_ argv: [String], timeout: Double = 10) throws {
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        pid = process.processIdentifier
        let line = try Self.readLine(out.fileHandleForReading, timeout: timeout)
        guard line == "ready" else {
            let errText = String(decoding: err.fileHandleForReading.availableData, as: UTF8.self)
            kill(pid, SIGKILL)
            process.waitUntilExit()
            stopped = true
            throw CheckpointError(.invalidState, "\(argv.joined(separator: " ")): not ready (read \"\(line)\"): \(errText)")
        }
    }

    private static func readLine(_ h: FileHandle, timeout: Double) throws -> String {
        var bytes: [UInt8] = []
        let fd = h.fileDescriptor
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 100) <= 0 { continue }
            var c: UInt8 = 0
            let n = read(fd, &c, 1)
            if n <= 0 { break }
            if c == UInt8(ascii: "\n") { break }
            bytes.append(c)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func stop() {
        guard !stopped else { return }
        stopped = true
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

enum Helper {
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Helpers/ipc-helper.c").path
    private static let lock = NSLock()
    nonisolated(unsafe) private static var built: String?

    /// The ipc helper, compiled once per test run.
    static func path() throws -> String {
        lock.lock(); defer { lock.unlock() }
        if let built { return built }
        let out = NSTemporaryDirectory() + "ocicheckpoint-ipc-helper-\(getpid())"
        try must(["/usr/bin/cc", "-O1", "-Wall", "-o", out, source])
        built = out
        return out
    }
}

func nsLink(_ pid: Int32, _ kind: String) -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(kind)")) ?? ""
}

/// Decodes an image with CRIU's crit; throws with crit's message when it cannot.
@discardableResult
func critDecode(_ path: String) throws -> [String: Any] {
    let r = try run(["/usr/bin/python3", "/usr/bin/crit", "decode", "-i", path])
    guard r.status == 0, let json = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any] else {
        throw CheckpointError(.image, "crit decode \(path): exit \(r.status): \(r.err)")
    }
    return json
}
