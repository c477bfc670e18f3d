// Support for the inspect tests: commands with their output in files, the helper process
// tree (Helpers/inspect-tree.c) dumped for real by the CLI, and a podman-like layout
// around the images (config.dump, spec.dump, rootfs-diff.tar).
// posix_spawn + waitpid, not Foundation's Process: its child monitor does not survive the
// ptrace stops of a seize.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

enum Env {
    /// Tests/CheckpointInspectTests/Support.swift → package root.
    static let packageRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static var binary: String {
        if let b = ProcessInfo.processInfo.environment["OCICHECKPOINT_BIN"], !b.isEmpty { return b }
        return packageRoot + "/.build/debug/ocicheckpoint"
    }
    static let helperSource = packageRoot + "/Tests/CheckpointInspectTests/Helpers/inspect-tree.c"
    static let runc = "/usr/sbin/runc"
    static let busybox = "/bin/busybox"
    static var canDump: Bool { geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/cc") }
    static var hasRunc: Bool {
        canDump && FileManager.default.isExecutableFile(atPath: runc) && FileManager.default.isExecutableFile(atPath: busybox)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

struct Output: CustomStringConvertible {
    let argv: [String]
    /// Exit code; 128+signal when killed; -1 on timeout.
    let status: Int32
    let out: String
    let err: String
    var ok: Bool { status == 0 }
    var description: String { "`\(argv.joined(separator: " "))` → status \(status)\n--- stdout\n\(out)--- stderr\n\(err)" }
}

enum Cmd {
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let closeFrom: CloseFrom? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(sym, to: CloseFrom.self)
    }()

    /// Starts argv with stdin /dev/null and stdout+stderr appended to `output`, every other
    /// fd closed, signals at their defaults.
    static func spawn(_ argv: [String], output: String) throws -> pid_t {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&fa, 1, 2)
        if let closeFrom { _ = closeFrom(&fa, 3) }
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
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &fa, &attr, cArgs, environ)
        guard rc == 0 else { throw TestFailure("posix_spawn \(argv[0]): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Runs argv to completion (killed at the timeout) and returns its output.
    @discardableResult
    static func run(_ argv: [String], timeout: Double = 60) -> Output {
        let base = "/tmp/inspect-cmd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let outPath = base + ".out", errPath = base + ".err"
        defer { unlink(outPath); unlink(errPath) }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&fa, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if let closeFrom { _ = closeFrom(&fa, 3) }
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &fa, nil, cArgs, environ)
        guard rc == 0 else { return Output(argv: argv, status: 127, out: "", err: "posix_spawn: \(String(cString: strerror(rc)))\n") }
        let status = wait(pid, timeout: timeout) ?? {
            kill(pid, SIGKILL)
            _ = wait(pid, timeout: 10)
            return -1
        }()
        return Output(argv: argv, status: status, out: readFile(outPath) ?? "", err: readFile(errPath) ?? "")
    }

    /// waitpid until exit: the exit code, 128+signal, or nil at the timeout.
    static func wait(_ pid: pid_t, timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        var raw: Int32 = 0
        while true {
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid { return raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f) }
            if r < 0 && errno != EINTR { return nil }
            if Date() > deadline { return nil }
            usleep(5_000)
        }
    }

    static func sh(_ script: String, timeout: Double = 60) -> Output { run(["/bin/sh", "-c", script], timeout: timeout) }

    /// `ocicheckpoint ARGS`.
    static func cli(_ args: [String], timeout: Double = 120) -> Output { run([Env.binary] + args, timeout: timeout) }
}

func readFile(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

@discardableResult
func waitFor(_ timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if condition() { return true }
        if Date() > deadline { return false }
        usleep(20_000)
    }
}

/// A scratch directory under /tmp/inspect-*, removed by `tearDown`.
final class Scratch {
    let path: String
    init() throws {
        var template = Array("/tmp/inspect-test-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw TestFailure("mkdtemp: \(String(cString: strerror(errno)))")
        }
        path = String(cString: template)
    }
    func sub(_ name: String) -> String { path + "/" + name }
    func tearDown() { Cmd.run(["/bin/rm", "-rf", path]) }
}

/// Sizes of the regular files directly in `dir`, by name.
func fileSizes(_ dir: String) -> [String: UInt64] {
    var out: [String: UInt64] = [:]
    for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
        if let attrs = try? FileManager.default.attributesOfItem(atPath: dir + "/" + name),
           attrs[.type] as? FileAttributeType == .typeRegular, let size = attrs[.size] as? NSNumber {
            out[name] = size.uint64Value
        }
    }
    return out
}
