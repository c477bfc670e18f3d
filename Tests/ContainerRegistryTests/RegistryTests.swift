// The hook registry and the locator on their own: atomic entries, stale entries (pid gone
// or reused) removed, the clear error for an unknown id, and the hook command given
// garbage or a stdin that never ends.

import ContainerRegistry
import Foundation
import OCISpec
import ProcFS
import SystemTestSupport
import Testing

@Suite struct RegistryTests {
    func record(id: String, pid: Int32, start: UInt64?) -> ContainerRecord {
        ContainerRecord(id: id, runtime: "test", source: .registry, pid: pid, pidStartTime: start, bundle: "/b",
                        rootfs: "/b/rootfs", cgroupPaths: ["freezer": "/sys/fs/cgroup/freezer/x"],
                        namespacePaths: ["pid": "/proc/\(pid)/ns/pid"], status: .created, created: nil,
                        annotations: ["k": "v"])
    }

    @Test func liveEntryIsKeptStaleEntriesAreRemoved() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let registry = ContainerRegistry(directory: scratch.path + "/registry")
        let me = getpid()
        let start = try TaskStat.read(pid: me).startTime

        let live = record(id: "spec-live", pid: me, start: start)
        try registry.record(live)
        #expect(try registry.entry(id: "spec-live") == live)
        #expect(try registry.entries() == [live])
        // No temporary files left beside the entry.
        #expect(try FileManager.default.contentsOfDirectory(atPath: registry.containersDirectory) == ["spec-live.json"])

        // Our pid with another start time: the pid was reused.
        try registry.record(record(id: "spec-reused", pid: me, start: start + 1))
        #expect(try registry.entry(id: "spec-reused") == nil)
        #expect(!FileManager.default.fileExists(atPath: registry.path(of: "spec-reused")))

        // A process that has exited.
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        try registry.record(record(id: "spec-gone", pid: gone.processIdentifier, start: nil))
        #expect(try registry.entries() == [live])
        #expect(!FileManager.default.fileExists(atPath: registry.path(of: "spec-gone")))

        try registry.remove(id: "spec-live")
        try registry.remove(id: "spec-live")
        #expect(try registry.entries().isEmpty)
    }

    @Test func unknownIDGivesTheClearError() throws {
        let locator = ContainerLocator(runcRoot: "/run/runc", crunRoot: "/run/crun",
                                       registry: ContainerRegistry(directory: "/run/ocicheckpoint"))
        #expect(throws: ContainerRegistryError(
            "container spec-no-such-container: not found in /run/runc, /run/crun or the hook registry /run/ocicheckpoint")) {
            try locator.find("spec-no-such-container")
        }
        #expect(throws: ContainerRegistryError("container id \"../etc\" is not valid (letters, digits, _ + - . only)")) {
            try locator.find("../etc")
        }
    }

    @Test func brokenRuntimeStateNamesTheFileAndField() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let dir = scratch.path + "/runc/spec-broken"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data(#"{"id": "spec-broken", "init_process_pid": "12", "init_process_start": 1, "config": {"rootfs": "/"}}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/state.json"))
        let locator = ContainerLocator(runcRoot: scratch.path + "/runc", crunRoot: scratch.path + "/crun",
                                       registry: ContainerRegistry(directory: scratch.path + "/registry"))
        #expect(throws: ContainerRegistryError(
            "container spec-broken: \(dir)/state.json: init_process_pid: expected an integer, found \"12\"")) {
            try locator.find("spec-broken")
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: Env.binary), "needs the built binary"))
    func hookGivenGarbageExitsZeroAndLogsWhy() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let registry = scratch.path + "/registry"
        let o = Cmd.sh("echo 'this is not JSON' | \(Env.binary) hook --registry \(registry)")
        #expect(o.ok, "\(o)")
        #expect(o.err.contains("stdin: not valid JSON"), "\(o)")
        let log = (try? String(contentsOfFile: registry + "/hook.log", encoding: .utf8)) ?? ""
        #expect(log.contains("ocicheckpoint-hook[") && log.contains("stdin: not valid JSON"), "log: \(log)")

        let bad = Cmd.sh(#"echo '{"ociVersion": "1.0.2", "id": "spec-x", "status": "running", "bundle": "/tmp"}' | "#
                     + "\(Env.binary) hook --registry \(registry)")
        #expect(bad.ok, "\(bad)")
        #expect(bad.err.contains(#"stdin: pid: missing (required when status is "running")"#), "\(bad)")

        let stage = Cmd.sh("echo '{}' | \(Env.binary) hook --stage bogus --registry \(registry)")
        #expect(stage.ok, "\(stage)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: registry) == ["hook.log"])
    }

    /// A writer that never closes stdin: the hook gives up at its deadline and exits 0.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: Env.binary), "needs the built binary"))
    func hookWhoseStdinNeverEndsExitsZeroAtItsDeadline() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let registry = scratch.path + "/registry"
        let started = Date()
        let fifo = scratch.path + "/fifo"
        let o = Cmd.sh("mkfifo \(fifo); sleep 10 > \(fifo) & writer=$!; "
                   + "\(Env.binary) hook --timeout 0.5 --registry \(registry) < \(fifo); status=$?; kill $writer; exit $status")
        let took = Date().timeIntervalSince(started)
        #expect(o.ok, "\(o)")
        #expect(took < 3, "the hook took \(took) s")
        let log = (try? String(contentsOfFile: registry + "/hook.log", encoding: .utf8)) ?? ""
        #expect(log.contains("no end of input before the deadline"), "log: \(log)")
    }
}
