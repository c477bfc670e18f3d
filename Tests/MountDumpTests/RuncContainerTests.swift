// The mount tree of a real runc container (Debian's runc): dumped with the external keys
// runc passes for its cgroup mounts and masked files, restored into fresh namespaces
// with a copy of its rootfs, as runc's restore provides one.

import Foundation
import Testing
import LinuxKernel
import Images
import MountDump
import ProcFS
import SystemTestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/runc")))
struct RuncContainerTests {
    final class RuncContainer {
        let state: String
        let id = "mountdump-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        let bundle: String

        init(scratch: Scratch) throws {
            bundle = scratch.sub("bundle")
            state = scratch.sub("runc-state")
            let rootfs = bundle + "/rootfs"
            try FakeContainer.makeRootfs(rootfs)
            for applet in try Shell.run(FakeContainer.busybox, ["--list"]).split(separator: "\n") where applet != "busybox" {
                try? FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
            }
            try Shell.run("/usr/sbin/runc", ["spec", "--bundle", bundle])
            let configPath = bundle + "/config.json"
            var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as! [String: Any]
            var process = config["process"] as! [String: Any]
            process["terminal"] = false
            process["args"] = ["sleep", "100000"]
            config["process"] = process
            config["root"] = ["path": "rootfs", "readonly": false]
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
            try Shell.sh("/usr/sbin/runc --root \(state) run -d --bundle \(bundle) \(id) </dev/null >/dev/null 2>\(bundle)/err")
        }

        var pid: Int32 {
            get throws {
                let out = try Shell.run("/usr/sbin/runc", ["--root", state, "state", id])
                let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
                return Int32(json["pid"] as! Int)
            }
        }

        deinit {
            _ = try? Shell.run("/usr/sbin/runc", ["--root", state, "delete", "-f", id])
        }
    }

    @Test func restoresTheMountTreeOfARuncContainer() throws {
        let scratch = try Scratch()
        let host = try HostMounts(scratch: scratch.path)
        let container = try RuncContainer(scratch: scratch)
        let pid = try container.pid
        let mounts = try MountInfoEntry.read(pid: pid)
        let hostMounts = try MountInfoEntry.read(pid: getpid())
        // runc's ext_mnt: every cgroup mount, and the masked files (binds of /dev/null).
        var dumpKeys: [String: String] = [:], restorePaths: [String: String] = [:]
        for m in mounts where m.fsType == "cgroup" || m.fsType == "cgroup2" {
            dumpKeys[m.mountPoint] = m.mountPoint
            let hierarchy = try #require(hostMounts.first { $0.devMajor == m.devMajor && $0.devMinor == m.devMinor && $0.root == "/" })
            restorePaths[m.mountPoint] = hierarchy.mountPoint + m.root
        }
        for m in mounts where m.root == "/null" {
            dumpKeys[m.mountPoint] = m.mountPoint
            restorePaths[m.mountPoint] = "/dev/null"
        }
        #expect(dumpKeys.count >= 3)
        let images = ImageDirectory(path: scratch.sub("images"))
        try FileManager.default.createDirectory(atPath: images.path, withIntermediateDirectories: true)
        let original = try MountView(pid: pid)
        let dumped = try #require(try MountNamespaceDump.dump(rootPid: pid, images: images, externalMounts: dumpKeys))
        // /dev, /dev/shm, /sys/fs/cgroup and the masked directories /proc/acpi, /sys/firmware.
        #expect(dumped.contentImages.count == 5)

        let rootfs2 = scratch.sub("rootfs2")
        try Shell.run("/bin/cp", ["-a", container.bundle + "/rootfs", rootfs2])
        let target = try RestoreTarget()
        try MountNamespaceDump.restore(rootPid: target.pid, images: images, root: rootfs2, externalMounts: restorePaths,
                                       log: try Log(path: scratch.sub("restore.log"), level: 4))
        let restored = try MountView(pid: target.pid)
        // The masked files were the container's /dev/null; runc hands the host's at restore.
        let masked = Set(mounts.filter { $0.root == "/null" }.map(\.mountPoint))
        let differences = Set(original.mounts.keys).union(restored.mounts.keys).subtracting(masked).sorted()
            .filter { original.mounts[$0] != restored.mounts[$0] }
        #expect(differences.isEmpty, "differ: \(differences)\n--- runc\n\(original)\n--- restored\n\(restored)")
        #expect(masked.count >= 1 && masked.allSatisfy { restored.mounts[$0]?.root == "/null" && restored.mounts[$0]?.options == original.mounts[$0]?.options })
        // runc made /dev's nodes with mknod; they come back from the tmpfs image.
        var st = stat()
        let r = "/proc/\(target.pid)/root"
        for file in masked { #expect(stat(r + file, &st) == 0 && st.st_rdev == 0x103, "\(file)") }
        #expect(lstat(r + "/dev/null", &st) == 0 && st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == 0x103)
        #expect(lstat(r + "/dev/ptmx", &st) == 0)
        target.started.stop()
        try host.expectUnchanged()
        withExtendedLifetime(container) {}
    }
}
