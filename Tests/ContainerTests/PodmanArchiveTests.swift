// Archives and images *we* write of podman's containers, taken back by podman itself
// (Debian's 4.3.1 through runc with ocicheckpoint as its engine): `ocicheckpoint
// checkpoint --export` then `podman container restore --import`, and `--export-image`
// then `podman container restore IMAGE`.

import Foundation
import SystemTestSupport
import Testing

@Suite("podman restores what ocicheckpoint checkpointed", .serialized,
       .enabled(if: Env.usable && FileManager.default.isExecutableFile(atPath: "/usr/bin/podman"), "needs root, runc and podman"))
struct PodmanArchiveTests {
    private static func oc(_ args: [String]) -> Output { Cmd.run([Env.binary] + args, timeout: 120) }

    /// A counting container that also leaves a file in /dev/shm, a new directory, and
    /// deletes /etc/group from its image.
    private static func startCounter(_ name: String, network: String = "none") throws {
        try PodmanTests.ensureImage()
        let started = PodmanTests.run(PodmanTests.podman + ["run", "-d", "--name", name, "--network", network,
            "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", PodmanTests.image, "sh", "-c",
            "echo shm-kept > /dev/shm/mark; mkdir /made; echo new > /made/file; rm /etc/group; "
                + "i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; sleep 0.1; done"])
        try #require(started.ok, "podman run: \(started)")
        try #require(waitFor(10) { ((try? PodmanTests.counts(name)) ?? []).count >= 5 }, "\(name) does not count")
    }

    private static func remove(_ names: String...) {
        for n in names { PodmanTests.run(["podman", "rm", "-f", "-t", "0", n], timeout: 60) }
    }

    /// After a restore: running, counting on from where the checkpoint left it, and the
    /// filesystem changes (including /dev/shm) are back.
    private static func expectRestored(_ name: String, after before: Int) throws {
        let state = PodmanTests.run(["podman", "inspect", "-f", "{{.State.Status}}", name]).out
        #expect(state.trimmingCharacters(in: .whitespacesAndNewlines) == "running", "\(name): \(state)")
        #expect(waitFor(10) { ((try? PodmanTests.counts(name)) ?? []).count >= before + 5 }, "\(name) does not count on")
        let counts = try PodmanTests.counts(name)
        #expect(consecutive(counts, from: 1), "\(name): counts across the restore: \(counts.suffix(20))")
        let files = PodmanTests.run(["podman", "exec", name, "sh", "-c", "cat /dev/shm/mark /made/file; ls /etc/group 2>&1"]).out
        #expect(files.hasPrefix("shm-kept\nnew\n") && files.contains("No such file"), "\(name): files after restore: \(files)")
    }

    @Test func podmanImportsOurArchiveUnderItsOwnAndANewName() throws {
        let name = "podman-ar-\(getpid())", copy = "podman-ar-copy-\(getpid())"
        let archive = NSTemporaryDirectory() + "\(name).tar.zst"
        defer {
            Self.remove(name, copy)
            try? FileManager.default.removeItem(atPath: archive)
        }
        try Self.startCounter(name)
        let cp = Self.oc(["checkpoint", "--export", archive, name])
        try #require(cp.ok, "checkpoint: \(cp)")
        let before = try PodmanTests.counts(name).count
        let members = Cmd.run(["/usr/bin/tar", "--zstd", "-xOf", archive, "config.dump"]).out
        let config = try #require(try JSONSerialization.jsonObject(with: Data(members.utf8)) as? [String: Any], "config.dump")
        #expect(config["name"] as? String == name && config["rootfsImageName"] as? String == PodmanTests.image)
        #expect((config["id"] as? String)?.count == 64 && config["checkpointEngine"] as? String == "ocicheckpoint")
        Self.remove(name)

        // Through plain runc the archive lacks the image under its changes: refused, nothing left.
        let bundle = NSTemporaryDirectory() + "\(name)-bundle"
        let ours = Self.oc(["restore", "--import", archive, "--name", "\(name)-runc", "--bundle", bundle])
        #expect(!ours.ok && ours.err.contains("only the changes against image \(PodmanTests.image)"), "\(ours)")
        #expect(!FileManager.default.fileExists(atPath: bundle))

        let rs = PodmanTests.run(PodmanTests.podman + ["container", "restore", "--import", archive])
        try #require(rs.ok, "podman restore --import: \(rs)")
        try Self.expectRestored(name, after: before)

        // The same archive once more beside the first, under a new name (and so a new id).
        let again = PodmanTests.run(PodmanTests.podman + ["container", "restore", "--import", archive, "--name", copy])
        try #require(again.ok, "podman restore --import --name: \(again)")
        try Self.expectRestored(copy, after: before)
        let ids = PodmanTests.run(["podman", "inspect", "-f", "{{.Id}}", name, copy]).out.split(separator: "\n")
        #expect(ids.count == 2 && ids[0] != ids[1])
    }

    @Test func podmanRestoresOurCheckpointImage() throws {
        let name = "podman-img-\(getpid())", image = "localhost/podman-ckpt-\(getpid()):1"
        let layout = NSTemporaryDirectory() + "podman-layout-\(getpid())"
        defer {
            Self.remove(name)
            PodmanTests.run(["podman", "rmi", "-f", image])
            try? FileManager.default.removeItem(atPath: layout)
        }
        try Self.startCounter(name)
        let cp = Self.oc(["checkpoint", "--export-image", layout + ":ckpt", name])
        try #require(cp.ok, "checkpoint: \(cp)")
        let before = try PodmanTests.counts(name).count
        let raw = Cmd.run(["/usr/bin/skopeo", "inspect", "--raw", "oci:\(layout):ckpt"])
        try #require(raw.ok, "skopeo inspect: \(raw)")
        let manifest = try JSONSerialization.jsonObject(with: Data(raw.out.utf8)) as? [String: Any]
        let annotations = manifest?["annotations"] as? [String: String] ?? [:]
        #expect(annotations["io.podman.annotations.checkpoint.name"] == name)
        #expect(annotations["io.podman.annotations.checkpoint.rootfsImageName"] == PodmanTests.image)
        // podman's restore takes an image as a checkpoint only with this key, equal to its runtime.
        #expect(annotations["io.podman.annotations.checkpoint.runtime.name"] == "runc")
        #expect(annotations["org.criu.checkpoint.engine.name"] == "ocicheckpoint")
        Self.remove(name)

        let copy = Cmd.run(["/usr/bin/skopeo", "copy", "oci:\(layout):ckpt", "containers-storage:\(image)"], timeout: 120)
        try #require(copy.ok, "skopeo copy: \(copy)")
        let rs = PodmanTests.run(PodmanTests.podman + ["container", "restore", image])
        try #require(rs.ok, "podman restore IMAGE: \(rs)")
        try Self.expectRestored(name, after: before)
    }

    /// A directory of the image removed and made again is opaque in the overlay: the
    /// image's files under it must stay gone after the restore, the new ones come back.
    @Test func aReplacedImageDirectoryComesBackAsItWas() throws {
        let base = "podman-opq-base-\(getpid())", name = "podman-opq-\(getpid())", image = "localhost/podman-opq-\(getpid()):1"
        let archive = NSTemporaryDirectory() + "\(name).tar.zst"
        defer {
            Self.remove(base, name)
            PodmanTests.run(["podman", "rmi", "-f", image])
            try? FileManager.default.removeItem(atPath: archive)
        }
        try PodmanTests.ensureImage()
        let made = PodmanTests.run(PodmanTests.podman + ["run", "--name", base, "--network", "none", "--ulimit", "nofile=20000:20000",
            "--ulimit", "nproc=32768:32768", PodmanTests.image, "sh", "-c", "mkdir -p /data/sub; echo a > /data/a; echo b > /data/sub/b"])
        try #require(made.ok && PodmanTests.run(["podman", "commit", "-q", base, image]).ok, "image with /data: \(made)")
        let started = PodmanTests.run(PodmanTests.podman + ["run", "-d", "--name", name, "--network", "none",
            "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", image, "sh", "-c",
            "rm -rf /data; mkdir /data; echo c > /data/c; i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; sleep 0.1; done"])
        try #require(started.ok, "podman run: \(started)")
        try #require(waitFor(10) { ((try? PodmanTests.counts(name)) ?? []).count >= 3 })
        let cp = Self.oc(["checkpoint", "--export", archive, name])
        try #require(cp.ok, "checkpoint: \(cp)")
        Self.remove(name)
        let rs = PodmanTests.run(PodmanTests.podman + ["container", "restore", "--import", archive])
        try #require(rs.ok, "podman restore --import: \(rs)")
        let found = PodmanTests.run(["podman", "exec", name, "find", "/data"]).out
        #expect(found.split(separator: "\n").sorted() == ["/data", "/data/c"], "after restore: \(found)")
    }

    /// Our config.dump against the one podman writes itself for the same container: every
    /// key podman's import acts on is equal (podman resets the rest: log, shm, lock).
    @Test func ourConfigDumpAgreesWithPodmansOwn() throws {
        let name = "podman-cfg-\(getpid())"
        let dir = NSTemporaryDirectory() + name
        defer {
            Self.remove(name)
            try? FileManager.default.removeItem(atPath: dir)
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Self.startCounter(name)
        let theirs = PodmanTests.run(PodmanTests.podman + ["container", "checkpoint", "--leave-running", "--compress", "none", "--export", dir + "/podman.tar", name])
        try #require(theirs.ok, "podman checkpoint: \(theirs)")
        let ours = Self.oc(["checkpoint", "--leave-running", "--compress", "none", "--export", dir + "/ours.tar", name])
        try #require(ours.ok, "checkpoint: \(ours)")
        func config(_ archive: String) throws -> [String: Any] {
            let out = Cmd.run(["/usr/bin/tar", "-xOf", archive, "config.dump"]).out
            return try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "config.dump of \(archive)")
        }
        let p = try config(dir + "/podman.tar"), o = try config(dir + "/ours.tar")
        for key in ["id", "name", "rootfsImageID", "rootfsImageName", "createNetNS", "shmSize", "staticDir", "stopSignal",
                    "stopTimeout", "createdTime", "cgroupManager", "cgroupParent", "cgroupsMode", "logDriver", "runtime",
                    "command", "CreateCommand", "passwd", "privileged", "umask", "sdnotifyMode", "conmonPidFile", "pid_file"] {
            #expect(p[key].map { "\($0)" } == o[key].map { "\($0)" }, "config.dump \(key): podman \(p[key] ?? "absent"), ours \(o[key] ?? "absent")")
        }
    }

    @Test func aPodmanNetworkNamespaceIsRefusedAndTheContainerRunsOn() throws {
        let name = "podman-net-\(getpid())"
        let archive = NSTemporaryDirectory() + "\(name).tar.zst"
        defer {
            Self.remove(name)
            try? FileManager.default.removeItem(atPath: archive)
        }
        try Self.startCounter(name, network: "bridge")
        let cp = Self.oc(["checkpoint", "--export", archive, name])
        #expect(!cp.ok)
        let message = cp.err.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(message.hasPrefix("Error:") && message.contains(name) && message.contains("network mode bridge") && !message.contains("\n"), "\(cp)")
        #expect(!FileManager.default.fileExists(atPath: archive))
        let n = try PodmanTests.counts(name).count
        #expect(waitFor(5) { ((try? PodmanTests.counts(name)) ?? []).count >= n + 3 }, "the refused container stopped counting")
    }
}
