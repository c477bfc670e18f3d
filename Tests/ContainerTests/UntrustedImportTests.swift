// `restore --import` runs as root on an archive anyone can make: a manifest proves it
// intact, not trustworthy. Crafted archives with a consistent manifest ask for what would
// reach the host (hooks, host bind mounts, capabilities, host namespaces, devices, device
// nodes and setuid files in the rootfs); each is refused with the setting named, leaves
// nothing behind, and --trust-archive accepts what the user trusts.

import CheckpointArchive
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct UntrustedImportTests {
    private func oc(_ args: [String]) -> Output { Cmd.run([Env.binary] + args, timeout: 120) }

    /// An archive's members, as a directory to change and pack again with a fresh manifest.
    private func variant(of members: String, at path: String, _ change: (String) throws -> Void) throws -> String {
        try #require(Cmd.run(["/bin/cp", "-a", members, path + ".d"]).ok)
        try change(path + ".d")
        try CheckpointArchive.pack(directory: path + ".d", to: path, compression: .none, progress: nil)
        return path
    }

    private func editSpec(_ dir: String, _ edit: (inout [String: Any]) -> Void) throws {
        let file = dir + "/spec.dump"
        var spec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as! [String: Any]
        edit(&spec)
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: file))
    }

    /// Appends `script`'s products (run in a scratch root) to the member rootfs-diff.tar.
    private func addToRootfsDiff(_ dir: String, _ script: String) throws {
        let extra = dir + "-extra"
        try FileManager.default.createDirectory(atPath: extra, withIntermediateDirectories: true)
        let o = Cmd.sh("cd \(extra) && \(script) && /usr/bin/tar --append -f \(dir)/rootfs-diff.tar --numeric-owner -C \(extra) .")
        try #require(o.ok, "\(o)")
    }

    @Test func craftedArchivesAreRefusedWithTheSettingNamed() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = scratch.newID()
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: countingScript())
        try bundle.run(id: id)
        try #require(waitFor(10) { bundle.count.count >= 3 }, "the container does not count")
        let archive = scratch.sub("good.tar")
        let cp = oc(["checkpoint", "--leave-running", "--compress", "none", "--export", archive, id])
        try #require(cp.ok, "checkpoint: \(cp)")
        #expect(Cmd.run([Env.runc, "delete", "-f", id]).ok)
        let members = scratch.sub("members")
        try CheckpointArchive.unpack(archive, into: members)

        let marker = "/tmp/ocicheckpoint-pwned-\(getpid())"
        unlink(marker)
        let cases: [(String, (String) throws -> Void, String)] = [
            ("hook", { try self.editSpec($0) { $0["hooks"] = ["prestart": [["path": "/bin/sh", "args": ["sh", "-c", "touch \(marker)"]]]] } },
             "spec.dump has prestart hooks (/bin/sh), which runc would run as root on this host"),
            ("bind", { try self.editSpec($0) {
                var mounts = $0["mounts"] as! [[String: Any]]
                mounts.append(["destination": "/host", "type": "bind", "source": "/etc", "options": ["rbind", "rw"]])
                $0["mounts"] = mounts } },
             "spec.dump bind-mounts host path /etc at /host"),
            ("caps", { try self.editSpec($0) {
                var process = $0["process"] as! [String: Any]
                var caps = process["capabilities"] as! [String: Any]
                caps["bounding"] = (caps["bounding"] as! [String]) + ["CAP_SYS_ADMIN"]
                process["capabilities"] = caps
                $0["process"] = process } },
             "process.capabilities.bounding adds CAP_SYS_ADMIN"),
            ("hostnet", { try self.editSpec($0) {
                var linux = $0["linux"] as! [String: Any]
                linux["namespaces"] = (linux["namespaces"] as! [[String: Any]]).filter { $0["type"] as? String != "network" }
                $0["linux"] = linux } },
             "the container shares the host's network namespace"),
            ("devices", { try self.editSpec($0) {
                var linux = $0["linux"] as! [String: Any]
                linux["devices"] = [["path": "/dev/sda", "type": "b", "major": 8, "minor": 0]]
                $0["linux"] = linux } },
             "linux.devices creates /dev/sda"),
            ("devnode", { try self.addToRootfsDiff($0, "mkdir -p tmp && mknod tmp/mem c 1 1") },
             "member tmp/mem is a character device node"),
            ("setuid", { try self.addToRootfsDiff($0, "mkdir -p tmp && cp /bin/busybox tmp/suid && chmod 4755 tmp/suid") },
             "member tmp/suid is setuid"),
        ]
        for (name, change, expected) in cases {
            let crafted = try variant(of: members, at: scratch.sub(name + ".tar"), change)
            let newID = scratch.newID(), path = scratch.sub("restored-" + name)
            let r = oc(["restore", "--import", crafted, "--name", newID, "--bundle", path])
            #expect(!r.ok && r.err.contains(expected) && r.err.contains("refused in an untrusted import"), "\(name): \(r)")
            #expect(!FileManager.default.fileExists(atPath: path), "\(name): the refused import left \(path)")
            #expect(Runc(id: newID).status == nil, "\(name): runc knows \(newID)")
        }
        #expect(access(marker, F_OK) != 0, "a hook of a crafted archive ran on the host")

        // What the user trusts goes through: the setuid file comes back, the container counts on.
        let trusted = scratch.sub("setuid.tar")
        let newID = scratch.newID(), path = scratch.sub("trusted")
        let r = oc(["restore", "--import", trusted, "--name", newID, "--bundle", path, "--trust-archive"])
        try #require(r.ok, "restore --trust-archive: \(r)")
        let b = Bundle(path: path)
        #expect(waitFor(10) { b.count.count >= bundle.count.count + 2 }, "no counting after the trusted restore")
        var st = stat()
        #expect(lstat(path + "/rootfs/tmp/suid", &st) == 0 && st.st_mode & 0o4000 != 0)
    }
}
