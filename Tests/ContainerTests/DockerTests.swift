// Docker 20.10 (Debian's docker.io) with the engine as its `criu`: dockerd --experimental,
// started by the test with its own data, exec root, socket and cgroup parent, reaches the
// engine through containerd's runc shim (`criu swrk 3` from its PATH). An image imported
// from a busybox-static rootfs; a container counting into a bind-mounted host directory.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One dockerd of the test's own, stopped by pid when the test ends.
final class DockerDaemon {
    static let dockerd = "/usr/sbin/dockerd"
    static let docker = "/usr/bin/docker"
    static let image = "oct-busybox:latest"
    static var installed: Bool { geteuid() == 0 && ClientEnv.executable(dockerd) && ClientEnv.executable(docker) }

    let dir: String
    let cgroupParent: String
    private let daemon: ClientDaemon
    var socket: String { dir + "/docker.sock" }

    init() throws {
        dir = try clientScratch("docker")
        cgroupParent = "oct-docker-" + (dir as NSString).lastPathComponent.dropFirst("oct-docker-".count)
        let criu = try ClientEnv.criuDirectory(in: dir)
        let argv = [Self.dockerd, "--experimental", "--data-root", dir + "/data", "--exec-root", dir + "/exec",
                    "--pidfile", dir + "/docker.pid", "-H", "unix://" + dir + "/docker.sock",
                    // No bridge, no iptables: nothing of the host's network is touched.
                    "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                    "--cgroup-parent=/" + cgroupParent,
                    "--default-ulimit", "nofile=20000:20000", "--default-ulimit", "nproc=32768:32768"]
        do {
            daemon = try ClientDaemon(argv, name: "dockerd", log: dir + "/dockerd.log", path: ClientEnv.path(criuDirectory: criu))
        } catch {
            ClientDaemon.cleanUp(dir, marker: dir)
            throw error
        }
        do {
            try daemon.waitReady(30) { Cmd.run(dockerArgv(["version"]), timeout: 5).ok }
        } catch {
            tearDown()
            throw error
        }
    }

    func dockerArgv(_ args: [String]) -> [String] { [Self.docker, "-H", "unix://" + socket] + args }

    @discardableResult
    func run(_ args: [String], timeout: Double = 60) -> Output { Cmd.run(dockerArgv(args), timeout: timeout) }

    /// `docker import` of a busybox-static rootfs tar (no registry here).
    func importBusybox() throws {
        let rootfs = dir + "/rootfs"
        try ClientEnv.busyboxRootfs(at: rootfs)
        let o = Cmd.sh("/bin/tar -C \(rootfs) -c . | \(dockerArgv(["import", "-", Self.image]).joined(separator: " "))", timeout: 60)
        guard o.ok else { throw TestFailure("docker import: \(o)") }
    }

    /// A container counting 1, 2, 3, ... into VOLUME/count every 0.2 s (VOLUME bind-mounted at /data).
    func runCounter(name: String, volume: String) throws {
        try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
        let o = run(["run", "-d", "--name", name, "--network", "none", "-v", volume + ":/data", Self.image,
                     "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i >> /data/count; sleep 0.2; done"])
        guard o.ok else { throw TestFailure("docker run: \(o)\n\(tail(daemon.log))") }
    }

    /// "running", "exited", "paused", ...
    func status(_ name: String) -> String {
        run(["inspect", "-f", "{{.State.Status}}", name], timeout: 10).out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The engine's log of the last failed checkpoint (the runc shim copies it into the
    /// bundle as criu-dump.log; after a success it is gone with the work directory).
    func lastDumpLog() -> String {
        let found = Cmd.sh("ls -t $(find \(dir)/exec \(dir)/data -name '*dump.log' 2>/dev/null) 2>/dev/null | head -1", timeout: 10).out
        let path = found.trimmingCharacters(in: .whitespacesAndNewlines)
        return path.isEmpty ? "(no dump.log)" : "--- \(path)\n" + tail(path, 20)
    }

    var logTail: String { "--- dockerd.log\n" + tail(daemon.log, 20) }

    func tearDown() {
        let names = run(["ps", "-aq"], timeout: 20).out.split(separator: "\n").map(String.init)
        for n in names {
            run(["unpause", n], timeout: 20)
            run(["rm", "-f", n], timeout: 30)
        }
        daemon.stop()
        ClientDaemon.cleanUp(dir, marker: dir)
        ClientDaemon.removeCgroups(cgroupParent)
    }
}

@Suite("Docker 20.10 with the engine as criu", .serialized,
       .enabled(if: DockerDaemon.installed, "needs root and docker.io (dockerd, docker): make deps"))
struct DockerTests {
    init() throws {
        try #require(ClientEnv.executable(Env.binary), "no engine binary at \(Env.binary): swift build first, or set OCICHECKPOINT_BIN")
    }

    /// `docker start --checkpoint` right after `checkpoint create` can meet containerd's copy
    /// of the same checkpoint tar not yet collected ("content sha256:...: already exists",
    /// moby/moby#42900): a Docker/containerd race, retried after containerd's GC ran.
    private func startFromCheckpoint(_ docker: DockerDaemon, _ name: String, _ checkpoint: String) -> Output {
        var o = docker.run(["start", "--checkpoint", checkpoint, name])
        for _ in 0..<10 where !o.ok && o.err.contains("already exists") {
            usleep(500_000)
            o = docker.run(["start", "--checkpoint", checkpoint, name])
        }
        return o
    }

    @Test("checkpoint create stops the container; start --checkpoint counts on from where it stopped")
    func checkpointThenStart() throws {
        let docker = try DockerDaemon()
        defer { docker.tearDown() }
        try docker.importBusybox()
        let volume = docker.dir + "/vol", countFile = volume + "/count"
        try docker.runCounter(name: "counter", volume: volume)
        let count = { ClientEnv.counts(readFile(countFile) ?? "") }
        try #require(waitFor(10) { count().count >= 5 }, "the container does not count\n\(docker.logTail)")

        let cp = docker.run(["checkpoint", "create", "counter", "cp1"])
        try #require(cp.ok, "docker checkpoint create: \(cp)\n\(docker.lastDumpLog())\n\(docker.logTail)")
        #expect(docker.status("counter") == "exited", "after checkpoint create: \(docker.status("counter"))")
        let last = count().last ?? 0
        #expect(consecutive(count(), from: 1), "count before restore: \(count().suffix(12))")
        usleep(600_000)
        #expect(count().last == last, "the container kept counting after its checkpoint")
        let listed = docker.run(["checkpoint", "ls", "counter"])
        #expect(listed.ok && listed.out.contains("cp1"), "docker checkpoint ls: \(listed)")

        let start = startFromCheckpoint(docker, "counter", "cp1")
        try #require(start.ok, "docker start --checkpoint cp1: \(start)\n\(docker.logTail)")
        #expect(docker.status("counter") == "running")
        #expect(waitFor(10) { (count().last ?? 0) >= last + 4 }, "no counting after restore: last \(last), now \(count().suffix(5))")
        // The restored shell's i went on from the checkpointed value: no restart, gap or repeat.
        #expect(consecutive(count(), from: 1), "count around \(last): \(count().suffix(12))")
        let exec = docker.run(["exec", "counter", "sh", "-c", "echo ok"])
        #expect(exec.ok && exec.out == "ok\n", "docker exec after restore: \(exec)")
        let stop = docker.run(["rm", "-f", "counter"])
        #expect(stop.ok, "docker rm -f: \(stop)")
    }

    @Test("checkpoint create --leave-running: it counts on, exec works, pause and unpause work, the checkpoint restores")
    func leaveRunningThenExecPauseUnpause() throws {
        let docker = try DockerDaemon()
        defer { docker.tearDown() }
        try docker.importBusybox()
        let volume = docker.dir + "/vol", countFile = volume + "/count"
        try docker.runCounter(name: "counter", volume: volume)
        let count = { ClientEnv.counts(readFile(countFile) ?? "") }
        try #require(waitFor(10) { count().count >= 5 }, "the container does not count\n\(docker.logTail)")

        let before = count().last ?? 0
        let cp = docker.run(["checkpoint", "create", "--leave-running", "counter", "cp2"])
        try #require(cp.ok, "docker checkpoint create --leave-running: \(cp)\n\(docker.lastDumpLog())\n\(docker.logTail)")
        let after = count().last ?? 0
        // Docker paused (froze) the container for the dump; it must not stay paused.
        #expect(docker.status("counter") == "running", "after --leave-running: \(docker.status("counter"))")
        let ps = docker.run(["ps", "--filter", "name=counter", "--format", "{{.Status}}"])
        #expect(ps.ok && !ps.out.contains("Paused"), "docker ps: \(ps.out)")
        #expect(waitFor(5) { (count().last ?? 0) >= after + 3 }, "the container stopped counting: \(after) → \(count().last ?? 0)")
        let exec = docker.run(["exec", "counter", "sh", "-c", "echo ok"])
        #expect(exec.ok && exec.out == "ok\n", "docker exec after --leave-running: \(exec)")

        // The pause state is Docker's again: pause freezes it, unpause thaws it.
        let pause = docker.run(["pause", "counter"])
        #expect(pause.ok, "docker pause: \(pause)")
        #expect(docker.status("counter") == "paused")
        usleep(300_000)
        let frozen = count().last ?? 0
        usleep(600_000)
        #expect(count().last == frozen, "counting while paused: \(frozen) → \(count().last ?? 0)")
        let unpause = docker.run(["unpause", "counter"])
        #expect(unpause.ok, "docker unpause: \(unpause)")
        #expect(docker.status("counter") == "running")
        #expect(waitFor(5) { (count().last ?? 0) >= frozen + 3 }, "no counting after unpause: \(frozen) → \(count().last ?? 0)")
        #expect(consecutive(count(), from: 1), "count of the running original: \(count().suffix(12))")

        // The checkpoint holds the count of the moment it was taken: between before and after.
        let stop = docker.run(["stop", "-t", "1", "counter"])
        try #require(stop.ok, "docker stop: \(stop)")
        let written = count().count
        let start = startFromCheckpoint(docker, "counter", "cp2")
        try #require(start.ok, "docker start --checkpoint cp2: \(start)\n\(docker.logTail)")
        #expect(waitFor(10) { count().count >= written + 4 }, "no counting after restore: \(count().suffix(5))")
        let resumed = count().dropFirst(written)
        let first = resumed.first ?? -1
        #expect((before + 1)...(after + 1) ~= first, "restored count starts at \(first), checkpoint was between \(before) and \(after)")
        #expect(consecutive(resumed, from: first), "restored count: \(Array(resumed))")
    }
}
