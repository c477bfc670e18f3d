// Dump a runc-like container's mount namespace, restore it into a fresh task's new
// namespaces, and compare the two trees and the tmpfs contents.

import Foundation
import Testing
import Engine
import LinuxKernel
import Images
import MountDump
import ProcFS
import SystemTestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct MountNamespaceTests {
    static let python = "/usr/bin/python3"

    /// The mounts of a runc container, and then some: binds inside the rootfs (a
    /// directory read-only, a file), external binds, tmpfs with every kind of file and a
    /// mount on top of one of its directories, a cgroup directory, devpts, mqueue, sysfs,
    /// masked and read-only paths, peer groups and a slave, atime flags.
    static func containerSetup(external: String, cgroup: String) -> String {
        """
        mount --bind "$R/proc/sys" "$R/proc/sys"
        mount -o remount,bind,ro "$R/proc/sys"
        mount -t tmpfs -o ro tmpfs "$R/proc/acpi"
        mount -t tmpfs -o nosuid,mode=755,size=65536k tmpfs "$R/dev"
        mkdir "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
        mknod -m 666 "$R/dev/zero" c 1 5
        touch "$R/dev/null"
        mount --bind /dev/null "$R/dev/null"
        mount --bind "$R/dev/null" "$R/proc/timer_list"
        mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$R/dev/pts"
        mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=1m shm "$R/dev/shm"
        mount -t mqueue -o nosuid,nodev,noexec mqueue "$R/dev/mqueue"
        mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
        mount -t tmpfs -o nosuid,nodev,noexec,mode=755 tmpfs "$R/sys/fs/cgroup"
        mkdir "$R/sys/fs/cgroup/memory"
        mount --bind "\(cgroup)" "$R/sys/fs/cgroup/memory"
        mount -o remount,bind,ro,nosuid,nodev,noexec "$R/sys/fs/cgroup/memory"
        mount -o remount,ro "$R/sys/fs/cgroup"
        mount -t tmpfs -o size=2m,mode=750,uid=1000,gid=1000 tmpfs "$R/run"
        printf hello > "$R/run/file"
        chmod 640 "$R/run/file"
        chown 1234:5678 "$R/run/file"
        \(python) -c "import os; os.setxattr('$R/run/file', 'user.color', b'blue')"
        ln "$R/run/file" "$R/run/hardlink"
        mkdir -m 700 "$R/run/sub"
        echo sub > "$R/run/sub/x"
        ln -s file "$R/run/link"
        mkfifo "$R/run/fifo"
        mknod "$R/run/tty" c 5 0
        truncate -s 10M "$R/run/sparse"
        mkdir "$R/run/inner"
        echo hidden > "$R/run/inner/hidden"
        mount -t tmpfs -o size=1m tmpfs "$R/run/inner"
        echo visible > "$R/run/inner/visible"
        mount --bind "$R/data" "$R/mnt/data"
        mount -o remount,bind,ro,nosuid "$R/mnt/data"
        mount --bind "$R/etc/hostname" "$R/etc/hostname.bind"
        mount --bind "$R/run/sub" "$R/mnt/runsub"
        mount --bind "\(external)" "$R/mnt/ext"
        mount -t tmpfs -o size=1m tmpfs "$R/mnt/shared"
        mount --make-shared "$R/mnt/shared"
        mount --bind "$R/mnt/shared" "$R/mnt/peer"
        mount --bind "$R/mnt/shared" "$R/mnt/slave"
        mount --make-slave "$R/mnt/slave"
        mount -t tmpfs -o size=1m tmpfs "$R/mnt/unbindable"
        mount --make-unbindable "$R/mnt/unbindable"
        mount -t tmpfs -o noatime,size=1m tmpfs "$R/mnt/noatime"
        mount -t tmpfs -o strictatime,size=1m tmpfs "$R/mnt/strict"
        """
    }

    static let externals = ["/dev/null": "devnull", "/mnt/ext": "ext-data"]

    /// A memory cgroup directory of our own for the container to bind, removed after.
    final class CgroupDir {
        let path = "/sys/fs/cgroup/memory/mountdump-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false) }
        deinit { rmdir(path) }
    }

    @Test func dumpsAndRestoresAContainerMountTree() throws {
        let scratch = try Scratch()
        let host = try HostMounts(scratch: scratch.path)
        let cgroup = try CgroupDir()
        let rootfs = scratch.sub("rootfs"), rootfs2 = scratch.sub("rootfs2")
        let ext = scratch.sub("ext"), ext2 = scratch.sub("ext2")
        let images = ImageDirectory(path: scratch.sub("images"))
        for d in [ext, ext2, images.path] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try "dumped side\n".write(toFile: ext + "/marker", atomically: true, encoding: .utf8)
        try "restored side\n".write(toFile: ext2 + "/marker", atomically: true, encoding: .utf8)
        try FakeContainer.makeRootfs(rootfs, dirs: ["data", "ext", "runsub", "shared", "peer", "slave", "unbindable",
                                                    "noatime", "strict"].map { "mnt/" + $0 })
        try Shell.run("/bin/cp", ["-a", rootfs, rootfs2])

        let container = try FakeContainer(scratch: scratch, rootfs: rootfs,
                                          setup: Self.containerSetup(external: ext, cgroup: cgroup.path))
        let original = try MountView(pid: container.pid)
        let log = try Log(path: scratch.sub("dump.log"), level: 4)
        let dumped = try #require(try MountNamespaceDump.dump(rootPid: container.pid, images: images,
                                                               externalMounts: Self.externals, log: log))
        #expect(dumped.imageName.fileName == "mountpoints-1.img")
        #expect(dumped.entries.count == original.mounts.count)
        let byMountpoint = Dictionary(dumped.entries.map { ($0.mountpoint, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byMountpoint["/dev/null"]?.extKey == "devnull")
        #expect(byMountpoint["/mnt/ext"]?.extKey == "ext-data")
        #expect(byMountpoint["/"]?.hasExtKey == false)
        let run = try #require(byMountpoint["/run"])
        #expect(run.fstype == UInt32(Fstype.tmpfs.rawValue) && run.options.contains("size=2048k"))
        #expect(byMountpoint["/mnt/data"].map { MountFlags(rawValue: $0.flags).isSuperset(of: [.readOnly, .noSuid]) } == true)
        #expect(byMountpoint["/mnt/shared"]?.hasSharedID == true && byMountpoint["/mnt/slave"]?.hasMasterID == true)
        #expect(byMountpoint["/mnt/unbindable"].map { MountFlags(rawValue: $0.flags).contains(.unbindable) } == true)
        // The tmpfs at /run holds what lies under its child mount, not what the child holds.
        let runTar = try Shell.run("/usr/bin/tar", ["-tzf", images.file(run.tmpfsImageName)])
        #expect(runTar.contains("./inner/hidden") && !runTar.contains("visible") && runTar.contains("./sparse"))
        // /dev, /dev/shm, /proc/acpi, /sys/fs/cgroup, /run, /run/inner and four under /mnt; binds share theirs.
        #expect(dumped.contentImages.count == 10)
        let decoded = try Shell.run(Self.python, ["/usr/bin/crit", "decode", "-i", images.file(dumped.imageName)])
        #expect(decoded.contains("\"magic\": \"MNTS\"") && decoded.contains("\"ext_key\": \"ext-data\""))
        container.started.stop()

        // The restored side lacks one mount point, which the restore creates.
        try FileManager.default.removeItem(atPath: rootfs2 + "/mnt/strict")
        let target = try RestoreTarget()
        #expect(try MountNamespaceDump().namespaceFlags(images: images) == CloneFlags.newNS.rawValue)
        var options = RestoreOptions(imagesDir: images.path)
        options.root = rootfs2
        options.externalMounts = ["devnull": "/dev/null", "ext-data": ext2]
        try MountNamespaceDump().setUp(RestoreSession(options: options, log: try Log(path: scratch.sub("restore.log"), level: 4),
                                                      rootPid: target.pid))
        let restored = try MountView(pid: target.pid)
        if ProcessInfo.processInfo.environment["MOUNTDUMP_VERBOSE"] != nil {
            print("--- dumped\n\(original)\n--- restored\n\(restored)\n--- restored mountinfo\n" + (try readProcFile("/proc/\(target.pid)/mountinfo")))
        }
        let differences = original.mounts.keys.sorted().filter { original.mounts[$0] != restored.mounts[$0] }
            + restored.mounts.keys.sorted().filter { original.mounts[$0] == nil }
        #expect(differences.isEmpty, "differ: \(differences)\n--- dumped\n\(original)\n--- restored\n\(restored)")

        // What the restored tasks see, through their root.
        let r = "/proc/\(target.pid)/root"
        #expect(try String(contentsOfFile: r + "/run/file", encoding: .utf8) == "hello")
        var st = stat()
        #expect(stat(r + "/run/file", &st) == 0 && st.st_mode & 0o7777 == 0o640 && st.st_uid == 1234 && st.st_gid == 5678)
        let fileInode = st.st_ino
        #expect(stat(r + "/run/hardlink", &st) == 0 && st.st_ino == fileInode)
        #expect(stat(r + "/run/sub", &st) == 0 && st.st_mode & 0o7777 == 0o700)
        #expect(stat(r + "/run", &st) == 0 && st.st_mode & 0o7777 == 0o750 && st.st_uid == 1000)
        #expect(lstat(r + "/run/fifo", &st) == 0 && st.st_mode & S_IFMT == S_IFIFO)
        #expect(lstat(r + "/run/tty", &st) == 0 && st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == 0x500) // makedev(5, 0)
        #expect(lstat(r + "/dev/zero", &st) == 0 && st.st_mode & S_IFMT == S_IFCHR && st.st_mode & 0o777 == 0o666)
        #expect(lstat(r + "/run/sparse", &st) == 0 && st.st_size == 10 << 20 && st.st_blocks < 64)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: r + "/run/link")) == "file")
        let xattr = try Shell.run(Self.python, ["-c", "import os; print(os.getxattr('\(r)/run/file', 'user.color').decode())"])
        #expect(xattr == "blue\n")
        #expect(try String(contentsOfFile: r + "/run/inner/visible", encoding: .utf8) == "visible\n")
        #expect(!FileManager.default.fileExists(atPath: r + "/run/inner/hidden"))
        #expect(try String(contentsOfFile: r + "/mnt/runsub/x", encoding: .utf8) == "sub\n")
        #expect(try String(contentsOfFile: r + "/mnt/data/file", encoding: .utf8) == "data-file\n")
        #expect(try String(contentsOfFile: r + "/mnt/ext/marker", encoding: .utf8) == "restored side\n")
        #expect(FileManager.default.fileExists(atPath: rootfs2 + "/mnt/strict"))
        // proc, sysfs are the restored task's pid and net namespaces'.
        let pids = try FileManager.default.contentsOfDirectory(atPath: r + "/proc").filter { Int($0) != nil }
        #expect(pids == ["1"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: r + "/sys/class/net") == ["lo"])
        // The peer groups work: a mount under /mnt/shared appears at its peer and slave.
        try FileManager.default.createDirectory(atPath: r + "/mnt/shared/sub", withIntermediateDirectories: false)
        try Shell.run("/usr/bin/nsenter", ["-t", "\(target.pid)", "-m", "/bin/busybox", "mount", "-t", "tmpfs", "tmpfs", "/mnt/shared/sub"])
        let after = try MountInfoEntry.read(pid: target.pid).map(\.mountPoint)
        #expect(after.contains("/mnt/peer/sub") && after.contains("/mnt/slave/sub"))
        target.started.stop()
        try host.expectUnchanged()
        withExtendedLifetime((scratch, cgroup)) {}
    }

    @Test func refusesAHostBindThatIsNotExternal() throws {
        let scratch = try Scratch()
        let host = try HostMounts(scratch: scratch.path)
        let rootfs = scratch.sub("rootfs"), outside = scratch.sub("outside")
        try FakeContainer.makeRootfs(rootfs, dirs: ["mnt/x"])
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let container = try FakeContainer(scratch: scratch, rootfs: rootfs, setup: "mount --bind \"\(outside)\" \"$R/mnt/x\"")
        let images = ImageDirectory(path: scratch.path)
        let error = #expect(throws: CheckpointError.self) {
            try MountNamespaceDump.dump(rootPid: container.pid, images: images)
        }
        #expect(error?.message.hasPrefix("mount /mnt/x (from \(outside)) is outside the container and not external") == true,
                "\(error?.message ?? "")")
        #expect(!images.exists(.mountpoints(1)))
        // Named external, the same mount is fine. The image takes the namespace id the
        // engine gave the root task (its ids image is named by its pid in the container).
        let ids = Self.ids(mnt: 5)
        try images.write(.ids(1), [ids])
        let dumped = try MountNamespaceDump.dump(rootPid: container.pid, images: images, externalMounts: ["/mnt/x/": "x"])
        #expect(dumped?.imageName.fileName == "mountpoints-5.img")
        #expect(dumped?.entries.first { $0.mountpoint == "/mnt/x" }?.extKey == "x")
        #expect(try MountNamespaceDump().namespaceFlags(images: images) == CloneFlags.newNS.rawValue)
        try host.expectUnchanged()
    }

    // CRIU's --ext-mount-map auto (LXC passes it): a bind from outside that no key names is
    // written with ext_key CRIU:AUTOGENERATED and the host path, without its "/", as source;
    // a restore with auto binds that path again, one without it is refused.
    @Test func autoDetectedExternalMountIsBoundBackFromItsHostPath() throws {
        let scratch = try Scratch()
        let host = try HostMounts(scratch: scratch.path)
        let rootfs = scratch.sub("rootfs"), outside = scratch.sub("outside")
        try FakeContainer.makeRootfs(rootfs, dirs: ["mnt/x"])
        try FileManager.default.createDirectory(atPath: outside + "/sub", withIntermediateDirectories: true)
        try "from the host\n".write(toFile: outside + "/sub/marker", atomically: true, encoding: .utf8)
        let container = try FakeContainer(scratch: scratch, rootfs: rootfs, setup: "mount --bind \"\(outside)/sub\" \"$R/mnt/x\"")
        let images = ImageDirectory(path: scratch.sub("images"))
        try FileManager.default.createDirectory(atPath: images.path, withIntermediateDirectories: true)
        let dumped = try #require(try MountNamespaceDump.dump(rootPid: container.pid, images: images, autoExternal: true))
        let x = try #require(dumped.entries.first { $0.mountpoint == "/mnt/x" })
        #expect(x.extKey == "CRIU:AUTOGENERATED" && x.source == String((outside + "/sub").dropFirst()), "\(x)")
        container.started.stop()

        let target = try RestoreTarget()
        let before = try MountInfoEntry.read(pid: target.pid)
        let refused = #expect(throws: CheckpointError.self) {
            try MountNamespaceDump.restore(rootPid: target.pid, images: images, root: rootfs)
        }
        #expect(refused?.message.contains("restore with --ext-mount-map auto") == true, "\(refused?.message ?? "")")
        #expect(try MountInfoEntry.read(pid: target.pid) == before)
        try MountNamespaceDump.restore(rootPid: target.pid, images: images, root: rootfs, autoExternal: true)
        #expect(try String(contentsOfFile: "/proc/\(target.pid)/root/mnt/x/marker", encoding: .utf8) == "from the host\n")
        target.started.stop()
        try host.expectUnchanged()
    }

    static func ids(mnt: UInt32) -> TaskKobjIdsEntry {
        var ids = TaskKobjIdsEntry()
        ids.vmID = 1; ids.filesID = 1; ids.fsID = 1; ids.sighandID = 1
        ids.mntNsID = mnt
        return ids
    }

    @Test func findsTheRootTasksImageAmongSeveral() throws {
        let scratch = try Scratch()
        let images = ImageDirectory(path: scratch.path)
        try images.write(.mountpoints(3), [MntEntry]())
        try images.write(.mountpoints(5), [MntEntry]())
        let error = #expect(throws: CheckpointError.self) { try MountNamespaceDump().namespaceFlags(images: images) }
        #expect(error?.message.contains("hold 2 mount namespaces") == true)
        // The dumper's own ids in the inventory name no tree namespace (CRIU writes them so).
        var inventory = InventoryEntry()
        inventory.imgVersion = 2
        inventory.rootIds = Self.ids(mnt: 3)
        try images.write(.inventory, [inventory])
        var root = PstreeEntry()
        root.pid = 42; root.ppid = 0; root.pgid = 42; root.sid = 42; root.threads = [42]
        try images.write(.pstree, [root])
        try images.write(.ids(42), [Self.ids(mnt: 4)])
        #expect(throws: CheckpointError.self) { try MountNamespaceDump().namespaceFlags(images: images) }
        try images.write(.ids(42), [Self.ids(mnt: 5)])
        #expect(try MountNamespaceDump().namespaceFlags(images: images) == CloneFlags.newNS.rawValue)
    }

    @Test func refusesAnUnknownFileSystem() throws {
        let scratch = try Scratch()
        let host = try HostMounts(scratch: scratch.path)
        let rootfs = scratch.sub("rootfs")
        try FakeContainer.makeRootfs(rootfs, dirs: ["mnt/ram"])
        let container = try FakeContainer(scratch: scratch, rootfs: rootfs, setup: "mount -t ramfs ramfs \"$R/mnt/ram\"")
        let error = #expect(throws: CheckpointError.self) {
            try MountNamespaceDump.dump(rootPid: container.pid, images: ImageDirectory(path: scratch.path))
        }
        #expect(error?.message.hasPrefix("mount /mnt/ram: file system type ramfs (source ramfs) is not supported") == true,
                "\(error?.message ?? "")")
        try host.expectUnchanged()
    }

    @Test func restoreNeedsEveryExternalKeyAndARoot() throws {
        let scratch = try Scratch()
        let host = try HostMounts(scratch: scratch.path)
        let rootfs = scratch.sub("rootfs"), ext = scratch.sub("ext")
        try FakeContainer.makeRootfs(rootfs, dirs: ["mnt/ext"])
        try FileManager.default.createDirectory(atPath: ext, withIntermediateDirectories: true)
        let container = try FakeContainer(scratch: scratch, rootfs: rootfs, setup: "mount --bind \"\(ext)\" \"$R/mnt/ext\"")
        let images = ImageDirectory(path: scratch.sub("images"))
        try FileManager.default.createDirectory(atPath: images.path, withIntermediateDirectories: true)
        try MountNamespaceDump.dump(rootPid: container.pid, images: images, externalMounts: ["/mnt/ext": "volume-1"])
        let target = try RestoreTarget()
        let before = try MountInfoEntry.read(pid: target.pid)

        let missingKey = #expect(throws: CheckpointError.self) {
            try MountNamespaceDump.restore(rootPid: target.pid, images: images, root: rootfs, externalMounts: ["other": ext])
        }
        #expect(missingKey?.message == "external mount /mnt/ext: no host path given for key \"volume-1\" (pass ext_mnt volume-1:PATH)")
        let noRoot = #expect(throws: CheckpointError.self) {
            try MountNamespaceDump.restore(rootPid: target.pid, images: images, root: nil, externalMounts: ["volume-1": ext])
        }
        #expect(noRoot?.message.contains("needs the directory to build it in") == true)
        #expect(try MountInfoEntry.read(pid: target.pid) == before)
        try host.expectUnchanged()
    }

    @Test func aTreeInOurMountNamespaceWritesNothing() throws {
        let scratch = try Scratch()
        let images = ImageDirectory(path: scratch.path)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: FakeContainer.busybox)
        child.arguments = ["sleep", "100"]
        try child.run()
        defer { kill(child.processIdentifier, SIGKILL); child.waitUntilExit() }
        #expect(try MountNamespaceDump.dump(rootPid: child.processIdentifier, images: images) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
        #expect(try MountNamespaceDump().namespaceFlags(images: images) == 0)
        // And a restore from such images leaves the task where it is.
        try MountNamespaceDump.restore(rootPid: child.processIdentifier, images: images, root: nil)
    }
}
