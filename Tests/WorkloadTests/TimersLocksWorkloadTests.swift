// POSIX timers, file locks and POSIX message queues through a real dump and restore.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let timers = Workload(name: "timers")
    static let timersInTimeNamespace = Workload(name: "timers", args: ["timens"])
    static let locks = Workload(name: "locks")
    static let mqueue = Workload(name: "mqueue")
    static let mqueueNotify = Workload(name: "mqueue", args: ["notify"])
    static let mqueueIPCNamespace = Workload(name: "mqueue", args: ["ipcns"])
    static let mqueueOrphan = Workload(name: "mqueue", args: ["orphan"])
}

extension WorkloadRun {
    /// The CLI with arguments the shared harness does not pass (--file-locks).
    func dump(extra: [String], leaveRunning: Bool) async -> CLIResult {
        var args = ["dump", "-t", "\(rootPid)", "-D", images, "-o", dumpLog, "-v4"] + extra
        if leaveRunning { args.append("--leave-running") }
        return await CLI.run(args, outputDir: base)
    }

    func restore(extra: [String]) async -> CLIResult {
        unlink(pidfile)
        return await CLI.run(["restore", "-D", images, "-d", "--pidfile", pidfile, "-o", restoreLog, "-v4"] + extra, outputDir: base)
    }
}

@Suite("timers, file locks, message queues", .serialized)
struct TimersLocksTests {
    func requireBinary() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Paths.binary),
                     "no CLI at \(Paths.binary): run `swift build` or set OCICHECKPOINT_BIN")
    }

    @Test("POSIX timers keep ids, clocks, signals, thread target and time left", arguments: Mode.allCases)
    func timers(_ mode: Mode) async throws { try await checkpointRestore(.timers, mode) }

    @Test("POSIX timers in a time namespace a day ahead: the clocks' view and the timers go on", arguments: Mode.allCases)
    func timersInTimeNamespace(_ mode: Mode) async throws { try await checkpointRestore(.timersInTimeNamespace, mode) }

    /// start → ready → dump → original gone → `between` → restore → go → PASS, with extra CLI arguments.
    func run(_ w: Workload, _ mode: Mode, dumpArgs: [String] = [], restoreArgs: [String] = [],
             between: (WorkloadRun) async throws -> Void = { _ in }) async throws {
        try requireBinary()
        let run = try WorkloadRun(w)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let d = await run.dump(extra: dumpArgs, leaveRunning: mode == .leaveRunning)
        try #require(d.status == 0, "dump failed: \(d)\n\(run.diagnostics())")
        let left = mode == .kill ? await run.reapOriginal() : await run.killOriginal()
        try #require(left.isEmpty, "original processes \(left) still exist\n\(run.diagnostics())")
        try await between(run)
        let r = await run.restore(extra: restoreArgs)
        try #require(r.status == 0, "restore failed: \(r)\n\(run.diagnostics())")
        #expect(run.restoredPid == run.rootPid)
        await run.expectPass("\(w.testDescription) after \(mode.testDescription) dump + restore")
    }

    @Test("flock, POSIX and OFD locks are held again after restore (--file-locks)", arguments: Mode.allCases)
    func locks(_ mode: Mode) async throws {
        try await run(.locks, mode, dumpArgs: ["--file-locks"], restoreArgs: ["--file-locks"])
    }

    @Test("without --file-locks a tree holding locks is refused and keeps running")
    func locksRefused() async throws {
        try requireBinary()
        let run = try WorkloadRun(.locks)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let d = await run.dump(extra: [], leaveRunning: false)
        #expect(d.status == 1, "\(d)")
        #expect(d.stderrLines.count == 1, "\(d)")
        #expect(d.stderr.contains("--file-locks") && d.stderr.contains("lock"), "\(d)")
        #expect(!FileManager.default.fileExists(atPath: run.images + "/inventory.img"))
        var problem = run.runningUntraced()
        let deadline = Date().addingTimeInterval(3)
        while problem != nil && Date() < deadline { await sleep(0.05); problem = run.runningUntraced() }
        #expect(problem == nil, "after the refused dump: \(problem ?? "")")
        await run.expectPass("locks after the refused dump")
    }

    @Test("images with locks are refused by a restore without --file-locks")
    func restoreNeedsFileLocks() async throws {
        try requireBinary()
        let run = try WorkloadRun(.locks)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let d = await run.dump(extra: ["--file-locks"], leaveRunning: false)
        try #require(d.status == 0, "dump failed: \(d)")
        _ = await run.reapOriginal()
        let r = await run.restore(extra: [])
        #expect(r.status == 1 && r.stderrLines.count == 1 && r.stderr.contains("--file-locks"), "\(r)")
        let left = await Proc.waitVanished(run.pids, timeout: 10)
        #expect(left.isEmpty, "processes \(left) exist after the refused restore")
    }

    /// Removes the workload's named queue (it outlives the workload in the host's ipc namespace).
    func unlinkQueue(_ run: WorkloadRun) async throws -> Int32? {
        guard let name = Proc.read(run.dir + "/qname") else { return nil }
        let bin = try WorkloadCompiler.shared.binary(for: .mqueue)
        let pid = try Proc.spawn([bin, run.dir, "unlink", name], stdout: run.base + "/unlink.out")
        return await Proc.wait(pid, timeout: 10)?.code
    }

    /// Kill mode: the queue is removed before the restore, as on another machine, so it is
    /// made again and refilled; leave-running: the queue still exists and is opened as is.
    @Test("POSIX message queues: attributes, messages and priorities in order", arguments: Mode.allCases)
    func mqueue(_ mode: Mode) async throws {
        try await run(.mqueue, mode) { run in
            if mode == .kill {
                let code = try await self.unlinkQueue(run)
                try #require(code == 0, "could not remove the named queue before the restore")
            }
        }
    }

    @Test("queues of the tree's own ipc namespace are made again in the restored one", arguments: Mode.allCases)
    func mqueueIPCNamespace(_ mode: Mode) async throws { try await run(.mqueueIPCNamespace, mode) }

    @Test("refused and still running: a queue with mq_notify, a queue of its ipc namespace no task has open",
          arguments: zip([Workload.mqueueNotify, .mqueueOrphan], ["mq_notify", "no task of the tree has open"]))
    func mqueueRefused(_ w: Workload, _ reason: String) async throws {
        try requireBinary()
        let run = try WorkloadRun(w)
        defer { run.cleanup() }
        try run.start()
        try await run.waitReady()
        let d = await run.dump(extra: [], leaveRunning: false)
        #expect(d.status == 1 && d.stderrLines.count == 1 && d.stderr.contains(reason), "\(d)")
        #expect(!FileManager.default.fileExists(atPath: run.images + "/inventory.img"))
        await run.expectPass("mqueue after the refused dump")
        _ = try? await unlinkQueue(run)
    }

    /// crit's JSON entries of one image.
    func critEntries(_ path: String, scratch: String) async throws -> [[String: Any]] {
        let out = scratch + "/crit.json", err = scratch + "/crit.err"
        let pid = try Proc.spawn([Paths.python, Paths.crit, "decode", "-i", path], stdout: out, stderr: err, append: false)
        let st = await Proc.wait(pid, timeout: 120)
        try #require(st?.exited == true && st?.code == 0, "crit decode \(path): \(Proc.read(err) ?? "")")
        let json = try JSONSerialization.jsonObject(with: Data((Proc.read(out) ?? "").utf8)) as? [String: Any]
        return try #require(json?["entries"] as? [[String: Any]])
    }

    @Test("crit reads the timers and file locks of real dumps")
    func critReadsRealDumps() async throws {
        try requireBinary()
        try #require(FileManager.default.fileExists(atPath: Paths.crit), "crit is not installed (Debian package criu)")
        let locks = try WorkloadRun(.locks)
        defer { locks.cleanup() }
        try locks.start()
        try await locks.waitReady()
        let d = await locks.dump(extra: ["--file-locks"], leaveRunning: true)
        try #require(d.status == 0, "\(d)")
        let l = try await critEntries(locks.images + "/filelocks.img", scratch: locks.base)
        // root: flock (its description shared with the child: once), 2 POSIX, OFD; child: POSIX
        #expect(l.compactMap { $0["flag"] as? Int }.sorted() == [1, 1, 1, 2, 4], "\(l)")
        #expect(Set(l.compactMap { $0["pid"] as? Int }) == Set(locks.pids.map(Int.init)), "\(l)")
        #expect(l.contains { $0["flag"] as? Int == 1 && $0["start"] as? Int == 10 && $0["len"] as? Int == 10 && $0["type"] as? Int == 1 }, "\(l)")
        #expect(l.contains { $0["flag"] as? Int == 4 && $0["start"] as? Int == 0 && $0["len"] as? Int == 50 }, "\(l)")
        await locks.expectPass("locks after a leave-running dump")

        let timers = try WorkloadRun(.timers)
        defer { timers.cleanup() }
        try timers.start()
        try await timers.waitReady()
        let t = await timers.dump(extra: [], leaveRunning: true)
        try #require(t.status == 0, "\(t)")
        let core = try await critEntries(timers.images + "/core-\(timers.rootPid).img", scratch: timers.base)
        let posix = ((core.first?["tc"] as? [String: Any])?["timers"] as? [String: Any])?["posix"] as? [[String: Any]] ?? []
        #expect(posix.compactMap { $0["it_id"] as? Int }.sorted() == [0, 1, 2, 3, 4], "\(posix)")
        let threadTimer = posix.first { $0["it_sigev_notify"] as? Int == 4 }
        let tid = threadTimer?["notify_thread_id"] as? Int ?? 0
        #expect(tid != 0 && tid != Int(timers.rootPid) && Proc.exists(pid_t(tid)), "\(posix)")
        #expect(threadTimer?["insec"] as? Int == 100_000_000, "\(posix)")
        await timers.expectPass("timers after a leave-running dump")
    }
}
