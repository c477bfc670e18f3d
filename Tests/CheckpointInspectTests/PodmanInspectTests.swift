// `inspect` on a real podman checkpoint archive (podman 4.3 through `runc --criu
// ocicheckpoint`): extracted whole, and extracted member by member as neededMembers
// chooses with the sizes from the archive's listing.

import CheckpointInspect
import Foundation
import SystemTestSupport
import Testing

@Suite(.serialized, .enabled(if: Env.hasRunc && FileManager.default.isExecutableFile(atPath: "/usr/bin/podman")
                                 && FileManager.default.isExecutableFile(atPath: "/usr/bin/zstd"), "needs podman, runc, zstd"))
struct PodmanInspectTests {
    static let image = "localhost/inspect-busybox:latest"
    static var podman: [String] { ["/usr/bin/podman", "--runtime", "runc", "--runtime-flag", "criu=\(Env.binary)"] }

    /// A busybox image made offline (no registry here), removed by the test.
    private func makeImage(_ scratch: Scratch) throws {
        let dir = scratch.sub("rootfs")
        let r = Cmd.sh("""
        set -e; mkdir -p \(dir)/bin \(dir)/etc \(dir)/tmp; chmod 1777 \(dir)/tmp
        cp /bin/busybox \(dir)/bin/; for a in sh sleep cat; do ln -s busybox \(dir)/bin/$a; done
        echo 'root:x:0:0:root:/root:/bin/sh' > \(dir)/etc/passwd; echo 'root:x:0:' > \(dir)/etc/group
        tar -C \(dir) -c . | /usr/bin/podman import - \(Self.image) >/dev/null
        """, timeout: 120)
        try #require(r.ok, "podman import: \(r)")
    }

    /// `tar -tv` of the archive: member name → size.
    private func listing(_ archive: String) throws -> [String: UInt64] {
        let t = Cmd.run(["/bin/tar", "--zstd", "-tvf", archive])
        try #require(t.ok, "\(t)")
        var out: [String: UInt64] = [:]
        for line in t.out.split(separator: "\n") where line.hasPrefix("-") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count >= 6, let size = UInt64(f[2]) { out[f[5...].joined(separator: " ")] = size }
        }
        return out
    }

    @Test func podmanExportedArchive() throws {
        let scratch = try Scratch()
        let name = "inspect-pc-\(getpid())"
        defer {
            Cmd.run(["/usr/bin/podman", "rm", "-f", "-t", "0", name], timeout: 60)
            Cmd.run(["/usr/bin/podman", "rmi", "-f", Self.image], timeout: 60)
            scratch.tearDown()
        }
        try makeImage(scratch)
        let started = Cmd.run(Self.podman + ["run", "-d", "--name", name, "--network", "none",
            "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", Self.image,
            "sh", "-c", "echo 1 > /tmp/changed; sleep 1000 & wait", "inspect-ctr", "marker-arg"], timeout: 60)
        try #require(started.ok, "podman run: \(started)")
        let id = started.out.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(waitFor(10) { Cmd.run(["/usr/bin/podman", "exec", name, "cat", "/tmp/changed"]).out == "1\n" })
        let archive = scratch.sub("ckpt.tar.zst")
        let cp = Cmd.run(Self.podman + ["container", "checkpoint", "--export=\(archive)", name], timeout: 120)
        try #require(cp.ok, "podman checkpoint: \(cp)")

        let whole = scratch.sub("whole")
        try FileManager.default.createDirectory(atPath: whole, withIntermediateDirectories: true)
        let x = Cmd.run(["/bin/tar", "--zstd", "-xf", archive, "-C", whole])
        try #require(x.ok, "\(x)")
        let o = Cmd.cli(["inspect", whole, "--all", "--format", "json"])
        try #require(o.ok, "\(o)")
        let doc = try #require((try JSONSerialization.jsonObject(with: Data(o.out.utf8)) as? [[String: Any]])?.first)
        #expect(doc["container_name"] as? String == name)
        #expect(doc["id"] as? String == id)
        #expect(doc["image"] as? String == Self.image)
        #expect(doc["runtime"] as? String == "runc")
        #expect(doc["engine"] as? String == "Podman")
        let members = try listing(archive)
        let size = try #require(doc["checkpoint_size"] as? [String: Any])
        let inCheckpoint = members.filter { CheckpointMembers.normalized($0.key).hasPrefix("checkpoint/") }
        #expect((size["total_size"] as? NSNumber)?.uint64Value == inCheckpoint.values.reduce(0, +))
        #expect((size["memory_pages_size"] as? NSNumber)?.uint64Value
                == inCheckpoint.filter { CheckpointMembers.normalized($0.key).hasPrefix("checkpoint/pages-") }.values.reduce(0, +))
        #expect((size["root_fs_diff_size"] as? NSNumber)?.uint64Value == members.first { CheckpointMembers.normalized($0.key) == "rootfs-diff.tar" }?.value)
        #expect(doc["statistics"] is [String: Any], "podman's stats-dump: \(o.out)")
        let tree = try #require(doc["process_tree"] as? [String: Any])
        #expect((tree["pid"] as? NSNumber)?.intValue == 1)
        #expect(tree["arguments"] as? [String] == ["sh", "-c", "echo 1 > /tmp/changed; sleep 1000 & wait", "inspect-ctr", "marker-arg"])
        #expect((tree["children"] as? [[String: Any]])?.first?["arguments"] as? [String] == ["sleep", "1000"])
        let mounts = doc["mounts"] as? [[String: String]] ?? []
        #expect(mounts.contains { $0["destination"] == "/" && $0["type"] == "overlay" && $0["origin"] == "mountpoints" }, "\(mounts)")

        // Only the members inspect needs, sizes from the listing: the same report.
        var options = InspectOptions.all
        options.environment = false
        let needed = Inspector.neededMembers(options)
        let chosen = members.keys.filter(needed).sorted()
        #expect(!chosen.contains { $0.contains("rootfs-diff") || $0.contains("tmpfs-dev") }, "\(chosen)")
        let partial = scratch.sub("partial")
        try FileManager.default.createDirectory(atPath: partial, withIntermediateDirectories: true)
        let px = Cmd.run(["/bin/tar", "--zstd", "-xf", archive, "-C", partial] + chosen)
        try #require(px.ok, "\(px)")
        let fromPartial = try Inspector(directory: partial, memberSizes: members).inspect(options)
        #expect(fromPartial == (try Inspector(directory: whole).inspect(options)))
    }
}
