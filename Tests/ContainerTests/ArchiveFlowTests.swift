// The OCI front end: `ocicheckpoint checkpoint --export` writes one archive of a running
// runc container; `ocicheckpoint restore --import` rebuilds it as new containers, several
// times from the same archive; `inspect` reads it; damaged archives are refused.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct ArchiveFlowTests {
    private func oc(_ args: [String], timeout: Double = 120) -> Output {
        Cmd.run([Env.binary] + args, timeout: timeout)
    }

    /// A counting busybox container with its stdio on /dev/null (an archive may be restored
    /// where the original's log files do not exist).
    private func startCounter(_ scratch: Scratch, setup: String = "", base: String? = nil) throws -> (id: String, bundle: Bundle) {
        let id = scratch.newID()
        let bundle = try Bundle.make(at: scratch.sub("bundle-\(id)"), args: countingScript(setup: setup))
        if let base { try #require(Cmd.run(["/bin/cp", "-a", bundle.rootfs, base]).ok) }
        let o = Cmd.sh("\(Env.runc) run -d --bundle \(bundle.path) \(id) </dev/null >/dev/null 2>&1", timeout: 30)
        try #require(o.ok, "runc run: \(o)")
        try #require(waitFor(10) { bundle.count.count >= 5 }, "the container does not count")
        return (id, bundle)
    }

    @Test func exportThenImportTwiceUnderNewNames() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let (id, bundle) = try startCounter(scratch)
        let archive = scratch.sub("ckpt.tar.zst")
        let caps = try #require(Runc(id: id).pid.map(capabilities), "no init pid")

        let cp = oc(["checkpoint", "--export", archive, id])
        try #require(cp.ok, "checkpoint: \(cp)")
        #expect(Runc(id: id).status != "running")
        let last = bundle.lastCount
        #expect(Cmd.run([Env.runc, "delete", "-f", id]).ok)
        try FileManager.default.removeItem(atPath: bundle.path)

        let members = Cmd.run(["/usr/bin/tar", "--zstd", "-tf", archive])
        for m in ["checkpoint/inventory.img", "checkpoint/descriptors.json", "config.dump", "spec.dump", "stats-dump", "rootfs-diff.tar", "deleted.files"] {
            #expect(members.out.split(separator: "\n").contains { $0 == m || $0 == "./" + m }, "archive lacks \(m): \(members.out.prefix(400))")
        }

        try checkInspect(archive, id: id)

        var restored: [(String, String)] = []
        for n in 1...2 {
            let newID = scratch.newID()
            let newBundle = scratch.sub("restored-\(n)")
            let rs = oc(["restore", "--import", archive, "--name", newID, "--bundle", newBundle])
            try #require(rs.ok, "restore \(n): \(rs)\n\(tail(newBundle + "/restore.log"))")
            #expect(Runc(id: newID).status == "running")
            // runc's reduced capability sets, not the restorer's full ones.
            #expect(Runc(id: newID).pid.map(capabilities) == caps, "capabilities of \(newID)'s init")
            restored.append((newID, newBundle))
        }
        for (newID, path) in restored {
            let b = Bundle(path: path)
            #expect(waitFor(10) { b.lastCount >= last + 4 }, "\(newID) does not count on from \(last): \(b.count.suffix(5))")
            #expect(consecutive(b.count, from: 1), "\(newID): count around \(last): \(b.count.suffix(12))")
        }
        // Independent: stopping one leaves the other counting.
        _ = Runc(id: restored[0].0).killAndDelete()
        let other = Bundle(path: restored[1].1), now = other.lastCount
        #expect(waitFor(5) { other.lastCount >= now + 3 })
    }

    /// inspect reads the archive itself: the container, the tree with command lines, sizes.
    private func checkInspect(_ archive: String, id: String) throws {
        let tree = oc(["inspect", archive, "--ps-tree"])
        try #require(tree.ok, "inspect: \(tree)")
        #expect(tree.out.hasPrefix(id + "\n"), "\(tree.out)")
        #expect(tree.out.contains("[1]  sh -c i=0; while true;"), "\(tree.out)")
        let json = oc(["inspect", archive, "--ps-tree", "--stats", "--format", "json"])
        try #require(json.ok, "inspect --format json: \(json)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])
        let report = try #require(parsed.first)
        #expect(report["container_name"] as? String == id && report["engine"] as? String == "ocicheckpoint")
        let root = try #require(report["process_tree"] as? [String: Any])
        #expect(root["pid"] as? Int == 1 && (root["arguments"] as? [String])?.first == "sh", "\(root)")
        // Sizes as the archive lists them.
        let listing = Cmd.run(["/usr/bin/tar", "--zstd", "-tvf", archive]).out.split(separator: "\n")
        let pages = listing.filter { $0.contains(" checkpoint/pages-") }.compactMap { Int($0.split(separator: " ", omittingEmptySubsequences: true)[2]) }.reduce(0, +)
        let sizes = try #require(report["checkpoint_size"] as? [String: Any])
        #expect(sizes["memory_pages_size"] as? Int == pages, "\(sizes) vs listing \(pages)")
        let stats = try #require(report["statistics"] as? [String: Any])
        #expect((stats["pages_written"] as? Int ?? 0) * 4096 == pages, "\(stats)")
    }

    @Test func rootfsBaseArchivesOnlyTheChanges() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let base = scratch.sub("base")
        let (id, bundle) = try startCounter(scratch, setup: "rm /bin/vi; echo changed > /etc/motd; ", base: base)
        let archive = scratch.sub("diff.tar.gz")
        let cp = oc(["checkpoint", "--compress", "gzip", "--rootfs-base", base, "--export", archive, id])
        try #require(cp.ok, "checkpoint: \(cp)")
        let last = bundle.lastCount
        let diff = Cmd.sh("/usr/bin/tar -xzOf \(archive) rootfs-diff.tar | /usr/bin/tar -tf -")
        let names = Set(diff.out.split(separator: "\n").map(String.init))
        #expect(names.contains("tmp/count") && names.contains("etc/motd"), "\(diff)")
        #expect(!names.contains("bin/busybox"), "the unchanged busybox went into the diff")
        let deleted = Cmd.sh("/usr/bin/tar -xzOf \(archive) deleted.files").out
        #expect(deleted.contains("bin/vi"), "deleted.files: \(deleted)")
        #expect(Cmd.run([Env.runc, "delete", "-f", id]).ok)

        // The archive names its base, but an archive may not choose a host directory to
        // copy: without --rootfs-base the import is refused and leaves nothing.
        let newID = scratch.newID(), path = scratch.sub("from-base")
        let refused = oc(["restore", "--import", archive, "--name", newID, "--bundle", path])
        #expect(!refused.ok && refused.err.contains("an archive cannot choose a host directory") && refused.err.contains(base), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: path) && Runc(id: newID).status == nil, "a refused import left its bundle or container")
        // Named on the command line, the base rebuilds the rootfs.
        let rs = oc(["restore", "--import", archive, "--name", newID, "--bundle", path, "--rootfs-base", base])
        try #require(rs.ok, "restore: \(rs)\n\(tail(path + "/restore.log"))")
        let b = Bundle(path: path)
        #expect(waitFor(10) { b.lastCount >= last + 3 } && consecutive(b.count, from: 1), "\(b.count.suffix(8))")
        #expect(readFile(path + "/rootfs/etc/motd") == "changed\n")
        #expect(!FileManager.default.fileExists(atPath: path + "/rootfs/bin/vi"))
        #expect(FileManager.default.fileExists(atPath: path + "/rootfs/bin/busybox"))
    }

    @Test func importOfADamagedArchiveIsRefusedAndLeavesNothing() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let (id, _) = try startCounter(scratch)
        let archive = scratch.sub("ckpt.tar")
        let cp = oc(["checkpoint", "--leave-running", "--compress", "none", "--export", archive, id])
        try #require(cp.ok, "checkpoint: \(cp)")
        #expect(Runc(id: id).status == "running", "--leave-running stopped the container")

        // Flip one byte in the middle of the uncompressed archive (inside some member's data).
        let fd = open(archive, O_RDWR)
        var st = stat()
        fstat(fd, &st)
        var byte: UInt8 = 0
        pread(fd, &byte, 1, off_t(st.st_size / 2))
        byte ^= 0xff
        pwrite(fd, &byte, 1, off_t(st.st_size / 2))
        close(fd)
        let before = Cmd.run(["/usr/bin/sha256sum", archive]).out

        let newID = scratch.newID()
        let target = scratch.sub("never")
        let rs = oc(["restore", "--import", archive, "--name", newID, "--bundle", target])
        #expect(!rs.ok)
        let message = rs.err.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(message.hasPrefix("Error:") && message.contains(archive) && !message.contains("\n"), "error: \(rs.err)")
        #expect(!FileManager.default.fileExists(atPath: target), "a refused import left \(target)")
        #expect(Runc(id: newID).status == nil)
        #expect(Cmd.run(["/usr/bin/sha256sum", archive]).out == before, "the restore altered the archive")
    }

    @Test func aRefusedCheckpointLeavesTheContainerRunningAndOnlyItsLog() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        // An established connection inside the container refuses a dump without --tcp-established.
        let (id, bundle) = try startCounter(scratch, setup: "sleep 1000 | nc -l -p 12345 >/dev/null 2>&1 & sleep 0.3; sleep 1000 | nc 127.0.0.1 12345 >/dev/null 2>&1 & ")
        let pid = try #require(Runc(id: id).pid)
        try #require(waitFor(10) { (readFile("/proc/\(pid)/net/tcp") ?? "").contains(":3039 ") })
        usleep(300_000)
        let archive = scratch.sub("refused.tar.zst")
        let cp = oc(["checkpoint", "--export", archive, id])
        #expect(!cp.ok)
        #expect(cp.err.hasPrefix("Error: runc checkpoint \(id) failed: ") && cp.err.hasSuffix("(log: \(archive).dump.log)\n"), "\(cp)")
        #expect(!FileManager.default.fileExists(atPath: archive))
        let left = (try? FileManager.default.contentsOfDirectory(atPath: scratch.path)) ?? []
        #expect(!left.contains { $0.hasPrefix(".ocicheckpoint-") }, "staging left behind: \(left)")
        #expect((readFile(archive + ".dump.log") ?? "").contains("is established; dump with --tcp-established"))
        #expect(Runc(id: id).status == "running" && Runc(id: id).pid == pid)
        let counted = bundle.lastCount
        #expect(waitFor(3) { bundle.lastCount >= counted + 3 }, "the container stopped counting")
    }

    @Test func checkpointOfAnUnknownContainerNamesIt() throws {
        let o = oc(["checkpoint", "--export", "/tmp/never.tar", "no-such-container-x1"])
        #expect(!o.ok)
        #expect(o.err == "Error: container no-such-container-x1: not found in /run/runc, /run/crun or the hook registry /run/ocicheckpoint\n", "\(o)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never.tar"))
    }
}

/// CapInh/Prm/Eff/Bnd/Amb of a process.
private func capabilities(_ pid: Int32) -> [String] {
    let status = procStatus(pid)
    return ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"].map { "\($0)=\(status[$0] ?? "?")" }
}
