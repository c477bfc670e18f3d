// podman (Debian's 4.3.1) using ocicheckpoint as runc's checkpoint engine: export a
// running container to an archive, remove it, import it back, and it counts on.

import Foundation
import SystemTestSupport
import Testing

@Suite("podman through runc --criu ocicheckpoint", .serialized)
struct PodmanTests {
    static let image = "localhost/ocicheckpoint-busybox:latest"

    @discardableResult
    static func run(_ args: [String], timeout: Double = 120) -> Output {
        Cmd.run([args[0].hasPrefix("/") ? args[0] : "/usr/bin/" + args[0]] + args.dropFirst(), timeout: timeout)
    }

    static var podman: [String] { ["podman", "--runtime", "runc", "--runtime-flag", "criu=\(Env.binary)"] }

    /// A busybox image made offline from busybox-static (no registry here).
    static func ensureImage() throws {
        if run(["podman", "image", "exists", image]).status == 0 { return }
        let dir = NSTemporaryDirectory() + "ocp-rootfs-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
        set -e; mkdir -p \(dir)/bin \(dir)/etc \(dir)/tmp; chmod 1777 \(dir)/tmp
        cp /bin/busybox \(dir)/bin/; for a in $(\(dir)/bin/busybox --list); do [ -e \(dir)/bin/$a ] || ln -s busybox \(dir)/bin/$a; done
        echo 'root:x:0:0:root:/root:/bin/sh' > \(dir)/etc/passwd; echo 'root:x:0:' > \(dir)/etc/group
        tar -C \(dir) -c . | podman import - \(image) >/dev/null
        """
        let r = run(["/bin/sh", "-c", script])
        try #require(r.status == 0, "podman import failed: \(r.err)")
    }

    static func counts(_ name: String) throws -> [Int] {
        let r = run(["podman", "exec", name, "cat", "/tmp/count"])
        return r.out.split(separator: "\n").compactMap { Int($0) }
    }

    @Test("checkpoint --export, rm, restore --import: the container counts on")
    func exportImport() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Env.binary), "no binary at \(Env.binary)")
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/podman"), "podman is not installed (make deps)")
        try Self.ensureImage()
        let name = "ocp-\(getpid())"
        let archive = NSTemporaryDirectory() + "\(name).tar.zst"
        defer {
            _ = Self.run(["podman", "rm", "-f", "-t", "0", name])
            try? FileManager.default.removeItem(atPath: archive)
        }
        let started = Self.run(Self.podman + ["run", "-d", "--name", name, "--network", "none",
            "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", Self.image,
            "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; sleep 0.1; done"])
        try #require(started.status == 0, "podman run: \(started.err)")
        usleep(800_000)
        let before = try Self.counts(name)
        try #require(!before.isEmpty)

        let cp = Self.run(Self.podman + ["container", "checkpoint", "--export=\(archive)", name])
        try #require(cp.status == 0, "checkpoint: \(cp.err)")
        #expect(!cp.err.contains("level=error"), "podman complained: \(cp.err)")
        let members = Self.run(["tar", "--zstd", "-tf", archive]).out
        for m in ["checkpoint/inventory.img", "config.dump", "spec.dump", "stats-dump", "rootfs-diff.tar"] {
            #expect(members.contains(m), "archive lacks \(m)")
        }
        try #require(Self.run(["podman", "rm", "-f", "-t", "0", name]).status == 0)

        let rs = Self.run(Self.podman + ["container", "restore", "--import=\(archive)"])
        try #require(rs.status == 0, "restore: \(rs.err)")
        usleep(600_000)
        let after = try Self.counts(name)
        // One run of 1, 2, 3, ...: no restart from 1, no gap, no repeat across the restore.
        #expect(after.count > before.count)
        #expect(after == Array(1...(after.last ?? 0)), "counts after restore: \(after.suffix(20))")
        let state = Self.run(["podman", "inspect", "-f", "{{.State.Status}}", name]).out
        #expect(state.trimmingCharacters(in: .whitespacesAndNewlines) == "running")
    }
}
