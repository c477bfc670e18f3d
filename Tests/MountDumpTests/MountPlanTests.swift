// The decisions, without mounting anything: what each mountinfo line becomes in the image
// and how each mount is made again.

import Foundation
import Testing
import Images
import MountDump
import ProcFS

@Suite struct MountPlanTests {
    /// A runc container's mount table as its init sees it (bundle rootfs on the host disk).
    static let runc = """
    100 80 254:0 /bundle/rootfs / rw,relatime master:1 - ext4 /dev/vda rw,discard
    101 100 0:50 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
    102 100 0:51 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
    103 102 0:52 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666
    104 102 0:53 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k
    105 102 0:49 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw
    106 100 0:54 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
    107 106 0:55 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
    108 107 0:32 /mycontainer /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:12 - cgroup cgroup rw,memory
    109 100 254:0 /var/lib/hosts/resolv.conf /etc/resolv.conf rw,relatime master:1 - ext4 /dev/vda rw,discard
    110 101 0:50 /bus /proc/bus ro,nosuid,nodev,noexec,relatime - proc proc rw
    111 101 0:56 / /proc/acpi ro,relatime - tmpfs tmpfs ro
    112 101 0:51 /null /proc/kcore rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
    113 100 254:0 /bundle/rootfs/data /mnt rw,relatime master:1 - ext4 /dev/vda rw,discard
    """

    static func entries(_ text: String, external: [String: String] = [:]) throws -> [MntEntry] {
        try MountInfoEntry.parse(text).map { MntEntry($0, externalKey: external[$0.mountPoint]) }
    }

    static func origins(_ plan: MountPlan) -> [String: MountPlan.Origin] {
        Dictionary(uniqueKeysWithValues: plan.steps.map { (plan.entries[$0.index].mountpoint, $0.origin) })
    }

    @Test func recordsWhatCRIURecords() throws {
        let line = "40 27 254:3 /srv/data /mnt/data ro,nosuid,noatime shared:7 master:3 unbindable - ext4 /dev/vdb ro,sync,errors=continue"
        let e = MntEntry(try MountInfoEntry.parse(line: line[...]), externalKey: "vol")
        #expect(e.mntID == 40 && e.parentMntID == 27 && e.rootDev == (254 << 20 | 3))
        #expect(e.root == "/srv/data" && e.mountpoint == "/mnt/data" && e.source == "/dev/vdb")
        #expect(e.fstype == UInt32(Fstype.unsupported.rawValue))
        #expect(MountFlags(rawValue: e.flags) == [.readOnly, .noSuid, .noAtime, .shared, .slave, .unbindable])
        #expect(MountFlags(rawValue: e.sbFlags) == [.readOnly, .synchronous] && e.options == "errors=continue")
        #expect(e.sharedID == 7 && e.masterID == 3 && e.extKey == "vol" && !e.hasExtMount)
        #expect(e.tmpfsImageName.fileName == "tmpfs-dev-\(254 << 20 | 3).tar.gz.img")
        let tmpfs = MntEntry(try MountInfoEntry.parse(line: "5 1 0:51 / /dev rw,nosuid - tmpfs tmpfs rw,size=64k,mode=755"), externalKey: nil)
        #expect(tmpfs.fstype == UInt32(Fstype.tmpfs.rawValue) && tmpfs.options == "size=64k,mode=755" && tmpfs.sbFlags == 0)
        #expect(!tmpfs.hasSharedID && !tmpfs.hasMasterID && !tmpfs.hasExtKey)
        #expect(MountFlags(rawValue: tmpfs.flags) == [.noSuid])
    }

    @Test func readsTheKeyOfOldExternalEntries() {
        var e = MntEntry()
        e.extMount = true
        e.root = "old-key"
        #expect(e.externalKey == "old-key")
        e.extKey = "new-key"
        #expect(e.externalKey == "new-key")
    }

    @Test func makesARuncContainerAgain() throws {
        let external = ["/sys/fs/cgroup/memory": "cg-memory", "/etc/resolv.conf": "resolv", "/proc/kcore": "/proc/kcore"]
        let plan = try MountPlan(entries: try Self.entries(Self.runc, external: external))
        let o = Self.origins(plan)
        let proc = FileSystemType.named("proc")!, tmpfs = FileSystemType.named("tmpfs")!
        #expect(o["/"] == .root && plan.steps.first?.origin == .root)
        #expect(o["/proc"] == .fresh(proc))
        #expect(o["/dev"] == .fresh(tmpfs) && o["/dev/shm"] == .fresh(tmpfs) && o["/proc/acpi"] == .fresh(tmpfs))
        #expect(o["/dev/pts"] == .fresh(FileSystemType.named("devpts")!))
        #expect(o["/sys"] == .fresh(FileSystemType.named("sysfs")!))
        #expect(o["/sys/fs/cgroup/memory"] == .external(key: "cg-memory"))
        #expect(o["/etc/resolv.conf"] == .external(key: "resolv"))
        #expect(o["/proc/kcore"] == .external(key: "/proc/kcore"))
        let procIndex = plan.entries.firstIndex { $0.mountpoint == "/proc" }!
        #expect(o["/proc/bus"] == .bind(source: procIndex, path: "/bus"))
        #expect(o["/mnt"] == .bind(source: plan.rootIndex, path: "/data"))
        let filled = plan.steps.filter(\.restoresContents).map { plan.entries[$0.index].mountpoint }
        #expect(Set(filled) == ["/dev", "/dev/shm", "/sys/fs/cgroup", "/proc/acpi"])
        // Parents first.
        var position: [String: Int] = [:]
        for (p, s) in plan.steps.enumerated() { position[plan.entries[s.index].mountpoint] = p }
        #expect(position["/dev"]! < position["/dev/pts"]! && position["/sys"]! < position["/sys/fs/cgroup"]!)
    }

    @Test func withoutExternalKeysBindsWhatTheContainerHasAndRefusesTheHost() throws {
        var entries = try Self.entries(Self.runc)
        let resolv = entries.firstIndex { $0.mountpoint == "/etc/resolv.conf" }!
        #expect(throws: MountPlan.Failure.outside(resolv)) { try MountPlan(entries: entries) }
        entries.remove(at: resolv)
        let plan = try MountPlan(entries: entries)
        let o = Self.origins(plan)
        let devIndex = plan.entries.firstIndex { $0.mountpoint == "/dev" }!
        // runc's masked /proc/kcore is a bind of the container's /dev/null.
        #expect(o["/proc/kcore"] == .bind(source: devIndex, path: "/null"))
        // A cgroup directory comes from a fresh mount of its hierarchy.
        #expect(o["/sys/fs/cgroup/memory"] == .freshSubtree(FileSystemType.named("cgroup")!, path: "/mycontainer"))
    }

    @Test func aBindWaitsForItsSource() throws {
        let text = """
        1 0 0:10 / / rw - tmpfs root rw
        2 1 0:11 / /a rw - tmpfs a rw
        3 1 0:12 / /b rw - tmpfs b rw
        4 2 0:12 /x /a/x rw - tmpfs b rw
        """
        let plan = try MountPlan(entries: try Self.entries(text))
        #expect(plan.steps.map { plan.entries[$0.index].mountpoint } == ["/", "/a", "/b", "/a/x"])
        #expect(Self.origins(plan)["/a/x"] == .bind(source: 2, path: "/x"))
        #expect(plan.steps.filter(\.restoresContents).map(\.index) == [1, 2])
    }

    @Test func refusesWhatCannotBeMadeAgain() throws {
        let base = "1 0 0:10 / / rw - tmpfs root rw\n"
        #expect(throws: MountPlan.Failure.unsupported(1)) {
            try MountPlan(entries: try Self.entries(base + "2 1 0:13 / /r rw - ramfs ramfs rw"))
        }
        // A part of a tmpfs that the container does not otherwise show.
        #expect(throws: MountPlan.Failure.outside(1)) {
            try MountPlan(entries: try Self.entries(base + "2 1 0:14 /sub /s rw - tmpfs tmpfs rw"))
        }
        #expect(throws: MountPlan.Failure.noRoot) {
            try MountPlan(entries: try Self.entries("2 1 0:14 / /s rw - tmpfs tmpfs rw"))
        }
        #expect(throws: MountPlan.Failure.noParent(1)) {
            try MountPlan(entries: try Self.entries(base + "3 9 0:15 / /t rw - tmpfs tmpfs rw"))
        }
    }

    @Test func splitsFlagsAsTheKernelShowsThem() {
        #expect(MountFlags.perMount("ro,nosuid,nodev,noexec,noatime,nodiratime") ==
                [.readOnly, .noSuid, .noDev, .noExec, .noAtime, .noDirAtime])
        #expect(MountFlags.perMount("rw,relatime") == [.relAtime])
        let sb = MountFlags.superblock("ro,sync,dirsync,lazytime,size=10k,mode=755")
        #expect(sb.flags == [.readOnly, .synchronous, .dirSync, .lazyTime] && sb.options == "size=10k,mode=755")
        #expect(MountFlags.superblock("rw").options.isEmpty)
    }
}
