// containerd 1.6 (Debian's containerd, its ctr) with the engine as its `criu`: containerd,
// started by the test with its own root, state, sockets and namespace, reaches the engine
// through its runc shim (`criu swrk 3` from its PATH). The image is a docker-save tar made
// by hand from busybox-static; containers count into /tmp/count, read by the host through
// the rootfs the shim mounts.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One containerd of the test's own, stopped by pid when the test ends.
final class ContainerdDaemon {
    static let containerd = "/usr/bin/containerd"
    static let ctr = "/usr/bin/ctr"
    static let image = "docker.io/oct/busybox:latest"
    static var installed: Bool { geteuid() == 0 && ClientEnv.executable(containerd) && ClientEnv.executable(ctr) }

    let dir: String
    /// The containerd namespace, also the top of the tasks' cgroups (/NS/ID).
    let namespace: String
    private let daemon: ClientDaemon
    var socket: String { dir + "/containerd.sock" }

    init() throws {
        dir = try clientScratch("containerd")
        namespace = (dir as NSString).lastPathComponent.lowercased()
        let criu = try ClientEnv.criuDirectory(in: dir)
        // No CRI plugin (it wants CNI); the overlayfs snapshotter and cgroupfs are the defaults.
        let config = """
        version = 2
        root = "\(dir)/root"
        state = "\(dir)/state"
        disabled_plugins = ["io.containerd.grpc.v1.cri"]
        [grpc]
          address = "\(dir)/containerd.sock"
        [ttrpc]
          address = "\(dir)/containerd.sock.ttrpc"
        [plugins."io.containerd.internal.v1.opt"]
          path = "\(dir)/opt"
        """
        try config.write(toFile: dir + "/config.toml", atomically: true, encoding: .utf8)
        do {
            daemon = try ClientDaemon([Self.containerd, "--config", dir + "/config.toml"], name: "containerd",
                                      log: dir + "/containerd.log", path: ClientEnv.path(criuDirectory: criu))
        } catch {
            ClientDaemon.cleanUp(dir, marker: dir)
            throw error
        }
        do {
            try daemon.waitReady(30) { Cmd.run(ctrArgv(["version"]), timeout: 5).ok }
        } catch {
            tearDown()
            throw error
        }
    }

    func ctrArgv(_ args: [String]) -> [String] { [Self.ctr, "-a", socket, "-n", namespace] + args }

    @discardableResult
    func run(_ args: [String], timeout: Double = 60) -> Output { Cmd.run(ctrArgv(args), timeout: timeout) }

    /// A docker-save tar (manifest.json, config, one layer) of a busybox-static rootfs,
    /// imported with `ctr image import`.
    func importBusybox() throws {
        let work = dir + "/image"
        try ClientEnv.busyboxRootfs(at: work + "/rootfs")
        let layer = Cmd.sh("cd \(work) && /bin/tar --sort=name --owner=0 --group=0 --numeric-owner -C rootfs -cf layer.tar . && /usr/bin/sha256sum layer.tar")
        guard layer.ok, let digest = layer.out.split(separator: " ").first else { throw TestFailure("layer tar: \(layer)") }
        let config = """
        {"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},\
        "rootfs":{"type":"layers","diff_ids":["sha256:\(digest)"]}}
        """
        try config.write(toFile: work + "/config.json", atomically: true, encoding: .utf8)
        let manifest = #"[{"Config":"config.json","RepoTags":["\#(Self.image)"],"Layers":["layer.tar"]}]"#
        try manifest.write(toFile: work + "/manifest.json", atomically: true, encoding: .utf8)
        let tar = Cmd.sh("cd \(work) && /bin/tar -cf image.tar manifest.json config.json layer.tar")
        guard tar.ok else { throw TestFailure("image tar: \(tar)") }
        let o = run(["image", "import", work + "/image.tar"])
        guard o.ok else { throw TestFailure("ctr image import: \(o)") }
    }

    /// `ctr run -d` of a container counting 1, 2, 3, ... into /tmp/count every 0.2 s.
    func runCounter(_ id: String) throws {
        let o = run(["run", "-d", Self.image, id, "sh", "-c",
                     "i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; sleep 0.2; done"])
        guard o.ok else { throw TestFailure("ctr run: \(o)\n\(logTail)") }
    }

    /// The container's /tmp/count as the host sees it through the shim's rootfs mount.
    func counts(_ id: String) -> [Int] {
        ClientEnv.counts(readFile("\(dir)/state/io.containerd.runtime.v2.task/\(namespace)/\(id)/rootfs/tmp/count") ?? "")
    }

    /// The task's status in `ctr t ls`: RUNNING, PAUSED, STOPPED; nil without a task.
    func taskStatus(_ id: String) -> String? {
        for line in run(["task", "ls"], timeout: 10).out.split(separator: "\n").dropFirst() {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if f.count >= 3 && f[0] == id { return String(f[2]) }
        }
        return nil
    }

    /// The freezer.state of the task's cgroup (/NS/ID under the v1 freezer).
    func freezerState(_ id: String) -> String? {
        readFile("/sys/fs/cgroup/freezer/\(namespace)/\(id)/freezer.state")?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Kills the task, waits for it to stop, deletes it and the container.
    func remove(_ id: String) -> Output {
        run(["task", "kill", "-s", "KILL", id], timeout: 10)
        waitFor(10) { taskStatus(id) != "RUNNING" }
        run(["task", "rm", "-f", id], timeout: 20)
        return run(["container", "rm", id], timeout: 20)
    }

    /// containerd.log and the engine's log of a failed checkpoint or restore (the runc shim
    /// copies it into the bundle as criu-dump.log / criu-restore.log).
    var logTail: String {
        let found = Cmd.sh("ls -t $(find \(dir)/state -name 'criu-*.log' 2>/dev/null) 2>/dev/null | head -1", timeout: 10).out
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let engine = found.isEmpty ? "" : "\n--- \(found)\n" + tail(found, 20)
        return "--- containerd.log\n" + tail(daemon.log, 20) + engine
    }

    func tearDown() {
        let ids = run(["container", "ls", "-q"], timeout: 20).out.split(separator: "\n").map(String.init)
        for id in ids {
            if taskStatus(id) == "PAUSED" { run(["task", "resume", id], timeout: 10) }
            _ = remove(id)
        }
        daemon.stop()
        ClientDaemon.cleanUp(dir, marker: dir)
        ClientDaemon.removeCgroups(namespace)
    }
}

@Suite("containerd 1.6 (ctr) with the engine as criu", .serialized,
       .enabled(if: ContainerdDaemon.installed, "needs root and containerd (containerd, ctr): make deps"))
struct ContainerdTests {
    init() throws {
        try #require(ClientEnv.executable(Env.binary), "no engine binary at \(Env.binary): swift build first, or set OCICHECKPOINT_BIN")
    }

    @Test("ctr t checkpoint: a running task runs on, a paused task stays paused until resumed")
    func taskCheckpointKeepsPauseState() throws {
        let ctd = try ContainerdDaemon()
        defer { ctd.tearDown() }
        try ctd.importBusybox()

        // Running: containerd pauses it for the dump and resumes it after.
        try ctd.runCounter("running")
        try #require(waitFor(10) { ctd.counts("running").count >= 5 }, "the task does not count\n\(ctd.logTail)")
        let cp = ctd.run(["task", "checkpoint", "running"])
        try #require(cp.ok, "ctr t checkpoint: \(cp)\n\(ctd.logTail)")
        #expect(cp.out.contains("containerd.io/checkpoint/running"), "ctr t checkpoint printed: \(cp.out)")
        #expect(ctd.taskStatus("running") == "RUNNING", "after ctr t checkpoint: \(ctd.taskStatus("running") ?? "no task")")
        #expect(ctd.freezerState("running") == "THAWED", "freezer after the checkpoint: \(ctd.freezerState("running") ?? "-")")
        let after = ctd.counts("running").last ?? 0
        #expect(waitFor(5) { (ctd.counts("running").last ?? 0) >= after + 3 }, "the task stopped counting at \(after)")
        #expect(consecutive(ctd.counts("running"), from: 1), "count: \(ctd.counts("running").suffix(12))")
        let images = ctd.run(["image", "ls", "-q"]).out
        #expect(images.contains("containerd.io/checkpoint/running"), "no checkpoint image: \(images)")

        // Paused by the user before the checkpoint: still paused after it, counting only once resumed.
        try ctd.runCounter("paused")
        try #require(waitFor(10) { ctd.counts("paused").count >= 5 }, "the task does not count\n\(ctd.logTail)")
        let pause = ctd.run(["task", "pause", "paused"])
        try #require(pause.ok && ctd.taskStatus("paused") == "PAUSED", "ctr t pause: \(pause)")
        let frozen = ctd.counts("paused").last ?? 0
        let cp2 = ctd.run(["task", "checkpoint", "paused"])
        try #require(cp2.ok, "ctr t checkpoint of a paused task: \(cp2)\n\(ctd.logTail)")
        #expect(ctd.taskStatus("paused") == "PAUSED", "after the checkpoint: \(ctd.taskStatus("paused") ?? "no task")")
        #expect(ctd.freezerState("paused") == "FROZEN", "freezer after the checkpoint: \(ctd.freezerState("paused") ?? "-")")
        usleep(600_000)
        #expect(ctd.counts("paused").last == frozen, "counting while paused: \(frozen) → \(ctd.counts("paused").last ?? 0)")
        let resume = ctd.run(["task", "resume", "paused"])
        #expect(resume.ok, "ctr t resume: \(resume)")
        #expect(ctd.taskStatus("paused") == "RUNNING")
        #expect(waitFor(5) { (ctd.counts("paused").last ?? 0) >= frozen + 3 }, "no counting after resume")
        #expect(consecutive(ctd.counts("paused"), from: 1), "count: \(ctd.counts("paused").suffix(12))")
    }

    // ctr 1.6 restores a container only from a checkpoint that holds its image (--image):
    // from --task alone `ctr c restore` says "image name not found in index". --rw carries
    // the rw layer, so /tmp/count comes back as it was at the checkpoint.
    @Test("ctr c checkpoint --task --image --rw, then ctr c restore --live --rw: it counts on from the checkpoint")
    func containerCheckpointThenRestoreLive() throws {
        let ctd = try ContainerdDaemon()
        defer { ctd.tearDown() }
        try ctd.importBusybox()
        let id = "counter", ref = "oct/counter:checkpoint"
        try ctd.runCounter(id)
        try #require(waitFor(10) { ctd.counts(id).count >= 5 }, "the task does not count\n\(ctd.logTail)")

        let cp = ctd.run(["container", "checkpoint", "--task", "--image", "--rw", id, ref])
        try #require(cp.ok, "ctr c checkpoint: \(cp)\n\(ctd.logTail)")
        let after = ctd.counts(id).last ?? 0
        #expect(ctd.taskStatus(id) == "RUNNING", "after ctr c checkpoint: \(ctd.taskStatus(id) ?? "no task")")
        #expect(waitFor(5) { (ctd.counts(id).last ?? 0) >= after + 3 }, "the task stopped counting at \(after)")

        let removed = ctd.remove(id)
        try #require(removed.ok, "removing the original: \(removed)")
        let restore = ctd.run(["container", "restore", "--live", "--rw", id, ref])
        try #require(restore.ok, "ctr c restore --live: \(restore)\n\(ctd.logTail)")
        #expect(ctd.taskStatus(id) == "RUNNING", "after restore: \(ctd.taskStatus(id) ?? "no task")")
        let last = ctd.counts(id).last ?? 0
        #expect(waitFor(10) { (ctd.counts(id).last ?? 0) >= last + 4 }, "no counting after restore: \(ctd.counts(id).suffix(5))")
        // The rw layer and the shell's i are both of the moment of the checkpoint: one run
        // 1, 2, 3, ... with no restart, gap or repeat where the two meet.
        #expect(consecutive(ctd.counts(id), from: 1), "count around \(last): \(ctd.counts(id).suffix(12))")
        let exec = ctd.run(["task", "exec", "--exec-id", "probe", id, "sh", "-c", "echo ok"])
        #expect(exec.ok && exec.out == "ok\n", "ctr t exec after restore: \(exec)")
    }
}
