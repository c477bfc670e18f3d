// Terminals: a pty pair inside the tree (termios, window size, session, foreground group,
// packet/lock/exclusive modes, bytes in flight both ways), the dump's write-back of those
// bytes when the tree runs on, crit on the images, and a shell job on a terminal that
// belongs to the test (refused without --shell-job, restored onto the restorer's terminal).

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let tty = Workload(name: "tty")
    static let ttyJob = Workload(name: "tty-job")
    /// Without the two pty modes CRIU 4.2 cannot carry (exclusive, packet bytes in flight).
    static let ttyCriuModes = Workload(name: "tty", args: ["criu-modes"])
}

/// A pty the test holds: the master here, the slave's path for a child to open.
final class TestPty {
    let master: Int32
    let slavePath: String

    init() throws {
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        var unlock: Int32 = 0, index: UInt32 = 0
        guard master >= 0, ioctl(master, 0x4004_5431 /* TIOCSPTLCK */, &unlock) == 0,
              ioctl(master, 0x8004_5430 /* TIOCGPTN */, &index) == 0 else {
            throw TestFailure("new pty from /dev/ptmx: \(String(cString: strerror(errno)))")
        }
        slavePath = "/dev/pts/\(index)"
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
    }

    deinit { close(master) }

    func type(_ text: String) {
        _ = text.withCString { write(master, $0, strlen($0)) }
    }

    /// What the master reads until `needle` shows (or `timeout` passes).
    func read(until needle: String, timeout: Double = 10) async -> String {
        var got = [UInt8]()
        let deadline = Date().addingTimeInterval(timeout)
        var buf = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            let n = Glibc.read(master, &buf, buf.count)
            if n > 0 { got += buf[0..<n] }
            if String(decoding: got, as: UTF8.self).contains(needle) { break }
            if n <= 0 { await sleep(0.02) }
        }
        return String(decoding: got, as: UTF8.self)
    }
}

@Suite("terminals", .serialized)
struct TtyWorkloadTests {
    @Test("pty pair: termios, window size, session, foreground group, modes, bytes in flight", arguments: Mode.allCases)
    func ptyPair(_ mode: Mode) async throws { try await checkpointRestore(.tty, mode) }

    @Test("a --leave-running dump gives the bytes in flight back to the tree")
    func leaveRunningKeepsQueuedBytes() async throws {
        let run = try WorkloadRun(.tty)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let d = await run.dump(leaveRunning: true)
        try #require(d.status == 0, "dump failed\n\(run.diagnostics())")
        #expect(run.runningUntraced() == nil, "\(run.runningUntraced() ?? "")")
        await run.expectPass("the original after a --leave-running dump")
    }

    @Test("crit decodes the terminal images")
    func crit() async throws {
        let run = try WorkloadRun(.tty)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let d = await run.dump(leaveRunning: false)
        try #require(d.status == 0, "dump failed\n\(run.diagnostics())")
        let info = try critDecode(run.images + "/tty-info.img")
        #expect(info.contains("\"TTY_INFO\"") && info.contains("\"PTY\"") && info.contains("\"ws_col\": 111"), "\(info.prefix(3000))")
        #expect(info.contains("\"packet_mode\": true") && info.contains("\"locked\": true"), "\(info.prefix(3000))")
        let data = try critDecode(run.images + "/tty-data.img")
        #expect(data.contains(Data("to-child-in-flight".utf8).base64EncodedString()), "\(data)")
        let files = try critDecode(run.images + "/files.img")
        #expect(files.contains("\"type\": \"TTY\"") && files.contains("\"tty_info_id\""), "\(files.prefix(3000))")
    }

    private func critDecode(_ path: String) throws -> String {
        let out = path + ".json"
        let pid = try Proc.spawn([Paths.python, Paths.crit, "decode", "-i", path, "--pretty"], stdout: out, append: false)
        let st = Spawn.wait(pid, timeout: 60)
        let text = Proc.read(out) ?? ""
        try #require(st?.exited == true && st?.code == 0, "crit decode \(path): \(st.map(\.description) ?? "timeout")\n\(text)")
        return text
    }

    @Test("shell job: refused without --shell-job, restored onto the restorer's terminal with it")
    func shellJob() async throws {
        let run = try WorkloadRun(.ttyJob)
        defer { run.cleanup() }
        let first = try TestPty()
        try run.start(stdin: first.slavePath, stdout: first.slavePath)
        try await run.waitReady()
        first.type("one\n")
        #expect(await first.read(until: "echo:one").contains("echo:one"), "no echo before the dump\n\(run.diagnostics())")

        let refused = await run.dump(leaveRunning: false)
        #expect(refused.status != 0, "a dump without --shell-job succeeded\n\(run.diagnostics())")
        #expect(refused.stderr.contains("fd 0: terminal \(first.slavePath) belongs to a session outside the dumped tree; dump with --shell-job"), "\(refused)")
        #expect(run.runningUntraced() == nil, "after the refused dump: \(run.runningUntraced() ?? "")")
        first.type("two\n")
        #expect(await first.read(until: "echo:two").contains("echo:two"), "no echo after the refused dump\n\(run.diagnostics())")

        let dump = await CLI.run(["dump", "-t", "\(run.rootPid)", "-D", run.images, "-o", run.dumpLog, "-v4", "--shell-job"], outputDir: run.base)
        try #require(dump.status == 0, "dump --shell-job: \(dump)\n\(run.diagnostics())")
        let left = await run.reapOriginal()
        try #require(left.isEmpty, "original processes \(left) still exist\n\(run.diagnostics())")

        // The restorer runs on a terminal of its own, which the job gets instead.
        let second = try TestPty()
        let out = run.base + "/restore.out"
        let pid = try Proc.spawn([Paths.binary, "restore", "-D", run.images, "-d", "--shell-job", "--pidfile", run.pidfile,
                                  "-o", run.restoreLog, "-v4"], stdin: second.slavePath, stdout: out, append: false)
        let st = await Proc.wait(pid, timeout: 60)
        try #require(st?.exited == true && st?.code == 0, "restore --shell-job: \(st.map(\.description) ?? "timeout") \(Proc.read(out) ?? "")\n\(run.diagnostics())")
        #expect(run.restoredPid == run.rootPid)
        second.type("three\n")
        #expect(await second.read(until: "echo:three").contains("echo:three"), "no echo on the restorer's terminal\n\(run.diagnostics())")
        await run.expectPass("the shell job restored on the restorer's terminal")
    }
}
