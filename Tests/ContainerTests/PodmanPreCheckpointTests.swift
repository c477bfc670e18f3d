// podman's iterative checkpoint (issue 14, item 1): `container checkpoint --pre-checkpoint`
// then `--with-previous`, through runc with ocicheckpoint as its engine, and a restore that
// counts on. podman asks the `criu` on its PATH whether memory tracking works (go-criu's
// FEATURE_CHECK), not runc's --criu: the test puts ours first on that PATH.

import Foundation
import SystemTestSupport
import Testing

@Suite("podman pre-checkpoint through runc --criu ocicheckpoint", .serialized)
struct PodmanPreCheckpointTests {
    @Test("checkpoint --pre-checkpoint, checkpoint --with-previous, restore: the container counts on")
    func preCheckpointThenWithPrevious() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Env.binary), "no binary at \(Env.binary)")
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/podman"), "podman is not installed (make deps)")
        try PodmanTests.ensureImage()
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let bin = try scratch.directory("bin")
        try FileManager.default.createSymbolicLink(atPath: bin + "/criu", withDestinationPath: Env.binary)
        let env = ["PATH": bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin")]
        func podman(_ args: [String]) -> Output { Cmd.run(["/usr/bin/podman"] + PodmanTests.podman.dropFirst() + args, timeout: 120, extraEnv: env) }
        let name = "ocp-pre-\(getpid())"
        defer { _ = PodmanTests.run(["podman", "rm", "-f", "-t", "0", name]) }
        let started = podman(["run", "-d", "--name", name, "--network", "none",
            "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", PodmanTests.image,
            "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; sleep 0.1; done"])
        try #require(started.status == 0, "podman run: \(started.err)")
        usleep(800_000)

        let pre = podman(["container", "checkpoint", "--pre-checkpoint", name])
        try #require(pre.status == 0, "checkpoint --pre-checkpoint: \(pre.err)")
        let state = { PodmanTests.run(["podman", "inspect", "-f", "{{.State.Status}}", name]).out.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(state() == "running")
        let afterPre = try PodmanTests.counts(name)
        usleep(500_000)
        #expect(try PodmanTests.counts(name).count > afterPre.count, "no counting after the pre-checkpoint")

        let cp = podman(["container", "checkpoint", "--with-previous", name])
        try #require(cp.status == 0, "checkpoint --with-previous: \(cp.err)")
        let id = PodmanTests.run(["podman", "inspect", "-f", "{{.Id}}", name]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let checkpoint = "/var/lib/containers/storage/overlay-containers/\(id)/userdata/checkpoint"
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: checkpoint + "/parent")) != nil,
                "the checkpoint has no parent link: not built on the pre-checkpoint")

        let rs = podman(["container", "restore", name])
        try #require(rs.status == 0, "restore: \(rs.err)")
        usleep(600_000)
        let after = try PodmanTests.counts(name)
        #expect(after.count > afterPre.count)
        #expect(after == Array(1...(after.last ?? 0)), "counts after restore: \(after.suffix(20))")
        #expect(state() == "running")
    }
}
