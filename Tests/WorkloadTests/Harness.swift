// Harness for the real checkpoint/restore tests: compiles the C workloads, starts them
// as children of the test process, drives the `ocicheckpoint` CLI and checks the outcome.
// Workload protocol: see Workloads/workload.h.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

// MARK: - What is tested

enum Mode: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case kill          // dump kills the tree, restore brings it back
    case leaveRunning  // dump --leave-running; the test kills the original, then restores

    var testDescription: String { self == .kill ? "kill" : "leave-running" }
}

struct Workload: Sendable, CustomTestStringConvertible {
    let name: String
    var args: [String] = []
    var cflags: [String] = []
    /// Options the dump of this workload needs (--ghost-limit, --link-remap...), and its restore.
    var dumpArgs: [String] = []
    var restoreArgs: [String] = []

    var testDescription: String { args.isEmpty ? name : "\(name) \(args.joined(separator: " "))" }

    static let threads = Workload(name: "threads")
    static let tree = Workload(name: "tree")
    static let memory = Workload(name: "memory", args: ["512"])
    static let memorySmall = Workload(name: "memory", args: ["64"])
    static let sharedAnon = Workload(name: "shared-anon")
    static let blocked = Workload(name: "blocked")
    static let signals = Workload(name: "signals")
    static let files = Workload(name: "files")
    static let pipes = Workload(name: "pipes")
    static let stoppedZombie = Workload(name: "stopped-zombie")
    static let mallocRseq = Workload(name: "malloc-rseq")
    // Vector code sits in functions with target attributes, so no -mavx2/-mavx512f needed.
    static let fpu = Workload(name: "fpu")
    static let seccomp = Workload(name: "seccomp")
    static let attributes = Workload(name: "attributes")
    static let sysvShm = Workload(name: "sysv-shm")
    static let timens = Workload(name: "timens")
}

// MARK: - Paths

enum Paths {
    static let packageRoot = Project.root
    static let workloadSources = packageRoot + "/Tests/WorkloadTests/Workloads"
    static var binary: String { Project.binary }
    static let crit = "/usr/bin/crit"
    static let python = "/usr/bin/python3"
}

// MARK: - Process helpers

enum Proc {
    /// Spawn.start with stdin, stdout and stderr (default: with stdout) in files.
    static func spawn(_ argv: [String], extraEnv: [String: String] = [:], stdin: String = "/dev/null",
                      stdout: String, stderr: String? = nil, append: Bool = true) throws -> pid_t {
        let err: Redirect = stderr.flatMap { $0 == stdout ? nil : .file($0, append: append) } ?? .stdout
        return try Spawn.start(argv, stdin: stdin, stdout: .file(stdout, append: append), stderr: err, extraEnv: extraEnv)
    }

    /// Polls waitpid(WNOHANG) until the child exits; nil on timeout (child left alone).
    static func wait(_ pid: pid_t, timeout: Double) async -> WaitStatus? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            var st: Int32 = 0
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid { return WaitStatus(raw: st) }
            if r < 0 && errno != EINTR { return nil }
            if Date() > deadline { return nil }
            await sleep(0.01)
        }
    }

    /// SIGKILL, never to pid <= 1, our own pid or a process group by accident.
    static func sigkill(_ pid: pid_t) {
        guard pid > 1, pid != getpid() else { return }
        _ = Glibc.kill(pid, SIGKILL)
    }

    /// SIGKILL to the process group led by pid (a workload root is its session leader).
    static func sigkillGroup(_ pid: pid_t) {
        guard pid > 1, pid != getpid(), pid != getpgrp() else { return }
        _ = Glibc.kill(-pid, SIGKILL)
    }

    static func exists(_ pid: pid_t) -> Bool { access("/proc/\(pid)", F_OK) == 0 }

    /// The state letter of /proc/PID/stat (nil when gone).
    static func state(_ pid: pid_t) -> Character? {
        guard let s = read("/proc/\(pid)/stat"), let close = s.lastIndex(of: ")") else { return nil }
        return s[close...].dropFirst(2).first
    }

    /// Waits until none of the pids is in /proc any more (zombies count as present:
    /// orphans are reaped by this machine's init only every ~2 s).
    @discardableResult
    static func waitVanished(_ pids: [pid_t], timeout: Double = 30) async -> [pid_t] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let left = pids.filter(exists)
            if left.isEmpty || Date() > deadline { return left }
            await sleep(0.05)
        }
    }

    /// "State" and "TracerPid" of every thread of pid.
    static func threadStates(_ pid: pid_t) -> [(tid: String, state: String, tracer: String)] {
        let tids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tids.compactMap { tid in
            guard let s = read("/proc/\(pid)/task/\(tid)/status") else { return nil }
            var state = "", tracer = ""
            for line in s.split(separator: "\n") {
                if line.hasPrefix("State:") { state = line.dropFirst(6).trimmingCharacters(in: .whitespaces) }
                if line.hasPrefix("TracerPid:") { tracer = line.dropFirst(10).trimmingCharacters(in: .whitespaces) }
            }
            return (tid, state, tracer)
        }
    }

    /// Every process whose cwd lies under `dir` or whose command line mentions it.
    static func processes(under dir: String) -> [pid_t] {
        let me = getpid()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { pid in
            guard pid != me else { return false }
            if let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd"),
               cwd == dir || cwd.hasPrefix(dir + "/") { return true }
            if let cmd = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")),
               String(decoding: cmd, as: UTF8.self).contains(dir) { return true }
            return false
        }
    }

    static func read(_ path: String) -> String? {
        guard let d = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: d, as: UTF8.self)
    }
}

func sleep(_ seconds: Double) async {
    try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
}

// MARK: - Compiling workloads (once per test run)

final class WorkloadCompiler: @unchecked Sendable {
    static let shared = WorkloadCompiler()
    private let lock = NSLock()
    private var built: [String: String] = [:]
    private lazy var dir: String = {
        var t = Array("/tmp/ocicheckpoint-workloads-XXXXXX".utf8CString)
        let d = t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        WorkloadCompiler.cacheDir = d
        atexit { if let d = WorkloadCompiler.cacheDir { try? FileManager.default.removeItem(atPath: d) } }
        return d
    }()
    nonisolated(unsafe) private static var cacheDir: String?

    func binary(for w: Workload) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        let key = ([w.name] + w.cflags).joined(separator: " ")
        if let b = built[key] { return b }
        let suffix = w.cflags.isEmpty ? "" : "-" + w.cflags.joined().filter { $0.isLetter || $0.isNumber }
        let out = "\(dir)/\(w.name)\(suffix)"
        let src = "\(Paths.workloadSources)/\(w.name).c"
        let log = out + ".log"
        let pid = try Proc.spawn(["/usr/bin/cc", "-O2", "-pthread"] + w.cflags + ["-o", out, src],
                                 stdout: log, append: false)
        guard let st = Spawn.wait(pid, timeout: 120), st.exited, st.code == 0 else {
            throw TestFailure("cc \(src) failed:\n" + (Proc.read(log) ?? ""))
        }
        built[key] = out
        return out
    }
}

// MARK: - CLI

struct CLIResult: CustomStringConvertible {
    let args: [String]
    let status: Int32          // exit code; 128+signal when killed; -1 on timeout
    let stdout: String
    let stderr: String
    var stderrLines: [Substring] {
        stderr.split(separator: "\n", omittingEmptySubsequences: true)
    }
    var description: String {
        "$ ocicheckpoint \(args.joined(separator: " "))\n→ status \(status)\nstdout: \(stdout.suffix(2000))\nstderr: \(stderr.suffix(4000))"
    }
}

enum CLI {
    static func run(_ args: [String], env: [String: String] = [:], outputDir: String,
                    stdin: String = "/dev/null", timeout: Double = 600) async -> CLIResult {
        let tag = UUID().uuidString.prefix(8)
        let out = "\(outputDir)/cli-\(tag).out", err = "\(outputDir)/cli-\(tag).err"
        defer { unlink(out); unlink(err) }
        let pid: pid_t
        do {
            pid = try Proc.spawn([Paths.binary] + args, extraEnv: env, stdin: stdin, stdout: out, stderr: err, append: false)
        } catch {
            return CLIResult(args: args, status: -1, stdout: "", stderr: "\(error)")
        }
        var status: Int32 = -1
        if let st = await Proc.wait(pid, timeout: timeout) {
            status = st.status
        } else {
            Proc.sigkill(pid)
            _ = Spawn.wait(pid, timeout: 10)
        }
        var e = Proc.read(err) ?? ""
        if status == -1 { e += "\n[harness: timed out after \(Int(timeout)) s and killed]" }
        return CLIResult(args: args, status: status, stdout: Proc.read(out) ?? "", stderr: e)
    }
}

// MARK: - One workload run

final class WorkloadRun {
    let workload: Workload
    let base: String
    var dir: String { base + "/w" }          // the workload's DIR
    var images: String { base + "/img" }
    var dumpLog: String { base + "/dump.log" }
    var restoreLog: String { base + "/restore.log" }
    var pidfile: String { base + "/restore.pid" }
    private(set) var rootPid: pid_t = 0
    private(set) var pids: [pid_t] = []
    private var rootReaped = true   // nothing to reap until start()
    private var transcript: [String] = []

    init(_ workload: Workload) throws {
        self.workload = workload
        var t = Array("/tmp/ocw-\(workload.name)-XXXXXX".utf8CString)
        base = t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        for d in [dir, images] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
    }

    /// Compiles (cached) and starts the workload as our child: `BIN DIR args`.
    func start(stdin: String = "/dev/null", stdout: String? = nil) throws {
        let bin = try WorkloadCompiler.shared.binary(for: workload)
        rootPid = try Proc.spawn([bin, dir] + workload.args, stdin: stdin, stdout: stdout ?? dir + "/out")
        rootReaped = false
        pids = [rootPid]
    }

    /// Starts `setsid busybox sh -c script` (setsid does not fork: we are no group leader).
    func startShell(_ script: String) throws {
        let setsid = FileManager.default.isExecutableFile(atPath: "/usr/bin/setsid") ? ["/usr/bin/setsid"] : ["/bin/busybox", "setsid"]
        rootPid = try Proc.spawn(setsid + ["/bin/busybox", "sh", "-c", script], stdout: dir + "/out")
        rootReaped = false
        pids = [rootPid]
    }

    /// Starts `argv` as our child in our own session and process group (a shell job).
    func startCommand(_ argv: [String]) throws {
        rootPid = try Proc.spawn(argv, stdout: dir + "/out")
        rootReaped = false
        pids = [rootPid]
    }

    /// For workloads without a ready file: record every process working in our dir.
    func recordProcesses() {
        pids = [rootPid] + Proc.processes(under: base).filter { $0 != rootPid }.sorted()
    }

    /// Waits for DIR/ready and takes the pids listed in it (root first).
    func waitReady(timeout: Double = 20) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let text = Proc.read(dir + "/ready") {
                let listed = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { pid_t($0) }
                if let first = listed.first, first != rootPid {
                    throw TestFailure("ready lists root \(first), spawned \(rootPid)")
                }
                pids = listed.isEmpty ? [rootPid] : listed
                return
            }
            var st: Int32 = 0
            if waitpid(rootPid, &st, WNOHANG) == rootPid {
                rootReaped = true
                throw TestFailure("workload \(workload.name) exited (\(WaitStatus(raw: st))) before ready\n" + diagnostics())
            }
            if Date() > deadline { throw TestFailure("workload \(workload.name) not ready after \(Int(timeout)) s\n" + diagnostics()) }
            await sleep(0.02)
        }
    }

    func dump(leaveRunning: Bool, fault: String? = nil, into imageDir: String? = nil, timeout: Double = 300) async -> CLIResult {
        var args = ["dump", "-t", "\(rootPid)", "-D", imageDir ?? images, "-o", dumpLog, "-v4"]
        if leaveRunning { args.append("--leave-running") }
        args += workload.dumpArgs
        let r = await CLI.run(args, env: fault.map { ["OCICHECKPOINT_FAULT": $0] } ?? [:], outputDir: base, timeout: timeout)
        transcript.append(r.description)
        return r
    }

    func restore(fault: String? = nil, timeout: Double = 300) async -> CLIResult {
        unlink(pidfile)
        let args = ["restore", "-D", images, "-d", "--pidfile", pidfile, "-o", restoreLog, "-v4"] + workload.restoreArgs
        let r = await CLI.run(args, env: fault.map { ["OCICHECKPOINT_FAULT": $0] } ?? [:], outputDir: base, timeout: timeout)
        transcript.append(r.description)
        return r
    }

    /// Started, ready, dumped (killed) and gone: images for a test of the restore.
    func dumpKilled() async throws {
        try start()
        try await waitReady()
        let d = await dump(leaveRunning: false)
        try #require(d.status == 0, "dump failed\n\(diagnostics())")
        let left = await reapOriginal()
        try #require(left.isEmpty, "original processes \(left) still exist")
    }

    var restoredPid: pid_t? {
        Proc.read(pidfile).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Kill mode: the dump killed the tree; reap our child and wait until every pid is gone.
    func reapOriginal() async -> [pid_t] {
        if !rootReaped, await Proc.wait(rootPid, timeout: 30) != nil { rootReaped = true }
        return await Proc.waitVanished(pids)
    }

    /// Leave-running mode: SIGKILL the original tree, reap our child, wait until gone.
    func killOriginal() async -> [pid_t] {
        for p in pids { Proc.sigkill(p) }
        Proc.sigkillGroup(rootPid)
        for p in Proc.processes(under: base) { Proc.sigkill(p) }
        if !rootReaped, await Proc.wait(rootPid, timeout: 30) != nil { rootReaped = true }
        return await Proc.waitVanished(pids)
    }

    /// Every recorded pid still exists and no thread of it is stopped or traced.
    func runningUntraced() -> String? {
        for p in pids {
            let threads = Proc.threadStates(p)
            if threads.isEmpty { return "pid \(p) is gone" }
            for t in threads where t.state.hasPrefix("T") || t.state.hasPrefix("t") || t.state.hasPrefix("Z") || t.tracer != "0" {
                return "pid \(p) thread \(t.tid): State \(t.state), TracerPid \(t.tracer)"
            }
        }
        return nil
    }

    func go() { _ = FileManager.default.createFile(atPath: dir + "/go", contents: Data("go\n".utf8)) }

    /// Waits for DIR/result; nil on timeout or when the root vanished without one.
    func waitResult(timeout: Double = 60) async -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        var goneSince: Date?
        while true {
            if let r = Proc.read(dir + "/result") { return r }
            var st: Int32 = 0
            if !rootReaped, waitpid(rootPid, &st, WNOHANG) == rootPid { rootReaped = true }
            if !Proc.exists(rootPid) {
                if goneSince == nil { goneSince = Date() }
                if Date().timeIntervalSince(goneSince!) > 1 { return Proc.read(dir + "/result") }
            }
            if Date() > deadline { return nil }
            await sleep(0.02)
        }
    }

    /// go, then the result must be PASS.
    func expectPass(_ what: String, timeout: Double = 60, sourceLocation: SourceLocation = #_sourceLocation) async {
        go()
        let r = await waitResult(timeout: timeout)
        #expect(r == "PASS\n", "\(what): result \(r.map { "'\($0)'" } ?? "missing")\n\(diagnostics())",
                sourceLocation: sourceLocation)
        if r != nil {
            if !rootReaped, await Proc.wait(rootPid, timeout: 15) != nil { rootReaped = true }
            let left = await Proc.waitVanished(pids, timeout: 15)
            #expect(left.isEmpty, "\(what): processes \(left) still exist after the result", sourceLocation: sourceLocation)
        }
    }

    /// Byte contents of every file in the image dir.
    func imageSnapshot() -> [String: Data] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: images)) ?? []
        var snap: [String: Data] = [:]
        for n in names { snap[n] = FileManager.default.contents(atPath: images + "/" + n) }
        return snap
    }

    func diagnostics() -> String {
        func tail(_ path: String, _ n: Int) -> String {
            guard let s = Proc.read(path) else { return "(none)" }
            return s.count > n ? "…" + String(s.suffix(n)) : s
        }
        return """
        --- workload \(workload.testDescription) in \(base), pids \(pids)
        --- DIR/out:
        \(tail(dir + "/out", 4000))
        --- CLI:
        \(transcript.joined(separator: "\n"))
        --- dump log (tail):
        \(tail(dumpLog, 6000))
        --- restore log (tail):
        \(tail(restoreLog, 6000))
        """
    }

    /// Kills everything left of this run (original or restored) and removes the files.
    func cleanup(keepFiles: Bool = false) {
        killAll()
        if !keepFiles && ProcessInfo.processInfo.environment["OCICHECKPOINT_KEEP"] == nil {
            try? FileManager.default.removeItem(atPath: base)
        }
    }

    /// SIGKILLs every process of this run (recorded pids, anything in our dir, our child).
    func killAll() {
        let me = getpid()
        for _ in 0..<100 {
            // recorded pids (original or restored: same numbers), plus anything still
            // working in our directory; pid_max is small here, but a pid is not reused
            // within one test.
            var victims = Set(pids.filter { $0 > 1 && $0 != me && Proc.exists($0) })
            victims.formUnion(Proc.processes(under: base))
            victims = victims.filter { Proc.state($0) != "Z" }
            if !rootReaped && rootPid > 1 { victims.insert(rootPid) }
            for p in victims { Proc.sigkill(p) }
            if !rootReaped && rootPid > 1, Spawn.wait(rootPid, timeout: 5) != nil { rootReaped = true }
            if victims.isEmpty { break }
            usleep(100_000)
        }
    }
}

// MARK: - The common scenario

/// start → ready → dump refused in one line naming `reason`, no inventory, every task
/// running untraced → go → PASS.
func expectRefusedDump(_ w: Workload, _ reason: String) async throws {
    try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
    let run = try WorkloadRun(w)
    defer { run.cleanup() }
    try run.start()
    try await run.waitReady()
    let d = await run.dump(leaveRunning: false)
    #expect(d.status == 1, "the dump did not fail\n\(run.diagnostics())")
    #expect(d.stderrLines.count == 1 && d.stderr.contains(reason), "stderr: \(d.stderr)")
    #expect(!FileManager.default.fileExists(atPath: run.images + "/inventory.img"))
    #expect(run.runningUntraced() == nil, "\(run.runningUntraced() ?? "")")
    await run.expectPass("\(w.testDescription) after the refused dump")
}

/// start → ready → dump (mode) → original gone → restore → go → PASS.
func checkpointRestore(_ w: Workload, _ mode: Mode, resultTimeout: Double = 60) async throws {
    try #require(FileManager.default.isExecutableFile(atPath: Paths.binary),
                 "no CLI at \(Paths.binary): run `swift build` or set OCICHECKPOINT_BIN")
    let run = try WorkloadRun(w)
    defer { run.cleanup() }
    try run.start()
    try await run.waitReady()
    let d = await run.dump(leaveRunning: mode == .leaveRunning)
    try #require(d.status == 0, "dump failed\n\(run.diagnostics())")
    let left = mode == .kill ? await run.reapOriginal() : await run.killOriginal()
    try #require(left.isEmpty, "original processes \(left) still exist\n\(run.diagnostics())")
    let r = await run.restore()
    try #require(r.status == 0, "restore failed\n\(run.diagnostics())")
    #expect(run.restoredPid == run.rootPid, "pidfile holds \(run.restoredPid.map(String.init) ?? "nothing"), want \(run.rootPid)")
    await run.expectPass("\(w.testDescription) after \(mode.testDescription) dump + restore", timeout: resultTimeout)
}
