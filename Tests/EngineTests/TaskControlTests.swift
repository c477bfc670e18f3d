import LinuxKernel
import Foundation
import Testing
import ProcFS
import CShim
@testable import Engine

/// The ptrace layer on a real child: seize, inject, release. Synchronous tests, since
/// every ptrace request must come from the thread that seized.
@Suite("seize, inject and release a real process", .serialized)
struct TaskControlTests {
    /// A sleeping child in its own session (so a dump would accept it).
    static func spawnSleeper(_ command: String = "exec setsid sleep 600") throws -> Int32 {
        var pid: Int32 = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(command), nil]
        defer { argv.forEach { free($0) } }
        let r = posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ)
        try #require(r == 0)
        for _ in 0..<200 where (try? readProcFile("/proc/\(pid)/comm"))?.hasPrefix("sleep") != true { usleep(10_000) }
        return pid
    }

    static func state(_ pid: Int32) throws -> Character { try TaskStat.read(pid: pid, tid: nil).state }

    @Test("a frozen tree is released exactly as it was")
    func freezeAndRelease() throws {
        let pid = try Self.spawnSleeper()
        defer { kill(pid, SIGKILL); waitpid(pid, nil, 0) }
        let tree = try FrozenTree.freeze(root: pid)
        #expect(tree.processes.count == 1)
        // TracerPid names the tracing thread.
        #expect(try TaskStatus.read(pid: pid, tid: nil).tracerPid == Int32(oc_syscall(186 /* gettid */, 0, 0, 0, 0, 0, 0)))
        #expect(try Self.state(pid) == "t")
        tree.release()
        #expect(try TaskStatus.read(pid: pid, tid: nil).tracerPid == 0)
        // Back in its sleep (it runs for a moment while it restarts the syscall).
        for _ in 0..<100 where try Self.state(pid) != "S" { usleep(10_000) }
        #expect(try Self.state(pid) == "S")
    }

    @Test("an injected syscall runs in the task and its registers come back")
    func injectGetpid() throws {
        let pid = try Self.spawnSleeper()
        defer { kill(pid, SIGKILL); waitpid(pid, nil, 0) }
        let tree = try FrozenTree.freeze(root: pid)
        defer { tree.release() }
        let before = try Ptrace(pid).registers()
        let areasBefore = try ProcMaps.read(pid: pid).map { "\($0.start)-\($0.end)" }
        let probe = try ProcessProbe(pid: pid, threads: [pid], areas: try ProcMaps.read(pid: pid))
        let got = try probe.inject(on: pid) { try $0.call("getpid", SyscallNumber.getpid) }
        try probe.finish(mainThread: pid)
        #expect(Int32(got) == pid)
        let after = try Ptrace(pid).registers()
        #expect(after.rip == before.rip && after.rsp == before.rsp && after.rax == before.rax)
        // The scratch page is gone again.
        #expect(try ProcMaps.read(pid: pid).map { "\($0.start)-\($0.end)" } == areasBefore)
    }

    @Test("a tree in a user namespace nested two levels deep is refused and keeps running, untraced")
    func userNamespaceRefused() throws {
        let pid = try Self.spawnSleeper("exec unshare --user --map-root-user unshare --user --map-root-user setsid sleep 600")
        defer { kill(pid, SIGKILL); waitpid(pid, nil, 0) }
        let dir = NSTemporaryDirectory() + "ocu-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect {
            _ = try Dumper.dump(pid: pid, options: DumpOptions(imagesDir: dir), log: .silent)
        } throws: { ($0 as? CheckpointError)?.message.contains("user namespace") == true }
        #expect(try TaskStatus.read(pid: pid, tid: nil).tracerPid == 0)
        #expect(!FileManager.default.fileExists(atPath: dir + "/inventory.img"))
        for _ in 0..<100 where try Self.state(pid) != "S" { usleep(10_000) }
        #expect(try Self.state(pid) == "S")
    }

    @Test("seizing a task that does not exist names it")
    func missingTask() throws {
        #expect {
            _ = try FrozenTree.freeze(root: 999_999)
        } throws: { ($0 as? CheckpointError)?.message.contains("999999") == true }
    }
}
