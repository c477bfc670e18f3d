import Foundation
import SystemTestSupport
import Testing
import CgroupDump
import Engine
import LinuxKernel
import Images
#if canImport(Glibc)
import Glibc
#endif

/// Real v1 and v2 cgroups with settings and tasks, dumped and restored under other roots.
@Suite("cgroups dump and restore", .serialized)
struct CgroupsDumpTests {
    static let v1 = ["memory", "cpu", "pids"]

    /// memory, cpu and pids cgroups <name>/ctr (with an empty sub-cgroup ctr/sub) holding a
    /// sleeper, and a second sleeper in pids ctr/sub: two sets.
    struct V1Fixture {
        let cg: TestCgroups
        let root: Sleeper
        let other: Sleeper

        init(_ cg: TestCgroups) throws {
            self.cg = cg
            for h in CgroupsDumpTests.v1 { try cg.make(h, "ctr/sub") }
            try cg.write(cg.path("memory", "ctr") + "/memory.limit_in_bytes", "67108864")
            try cg.write(cg.path("memory", "ctr") + "/memory.soft_limit_in_bytes", "33554432")
            try cg.write(cg.path("memory", "ctr/sub") + "/memory.limit_in_bytes", "33554432")
            try cg.write(cg.path("cpu", "ctr") + "/cpu.shares", "512")
            try cg.write(cg.path("cpu", "ctr") + "/cpu.cfs_period_us", "50000")
            try cg.write(cg.path("cpu", "ctr") + "/cpu.cfs_quota_us", "25000")
            try cg.write(cg.path("pids", "ctr") + "/pids.max", "77")
            try cg.write(cg.path("pids", "ctr/sub") + "/pids.max", "11")
            let join = CgroupsDumpTests.v1.map { "echo $$ > \(cg.path($0, "ctr"))/cgroup.procs" }.joined(separator: " && ")
            root = try Sleeper(["/bin/sh", "-c", "\(join) && echo ready && exec sleep 1000"])
            other = try Sleeper(["/bin/sh", "-c", "\(join) && echo $$ > \(cg.path("pids", "ctr/sub"))/cgroup.procs && echo ready && exec sleep 1000"])
        }
    }

    static func target() throws -> Sleeper { try Sleeper(["/bin/sh", "-c", "echo ready; exec sleep 1000"]) }

    func newRoots(_ cg: TestCgroups, suffix: String) -> [String: String] {
        Dictionary(uniqueKeysWithValues: Self.v1.map { ($0, cg.cgroupPath(suffix: suffix)) })
    }

    @Test("v1 memory, cpu and pids settings and membership move to a new root")
    func v1RoundTrip() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let scratch = try Scratch()
        let f = try V1Fixture(cg)
        let ext = CgroupsDump()
        let image = try ext.dump(pids: [f.root.pid, f.other.pid], rootPid: f.root.pid, images: scratch.images, log: .silent)
        #expect(ext.setID(forPid: f.root.pid) == 1)
        #expect(ext.setID(forPid: f.other.pid) == 2)
        #expect(image.entry.sets.count == 2)
        let memory = try #require(image.entry.controllers.first { $0.cnames == ["memory"] })
        #expect(memory.dirs.map(\.dirName) == ["\(cg.name)/ctr"])
        #expect(memory.dirs.first?.children.map(\.dirName) == ["sub"])
        let limit = memory.dirs.first?.properties.first { $0.name == "memory.limit_in_bytes" }
        #expect(limit?.value == "67108864")
        f.root.stop(); f.other.stop()

        let t = try Self.target()
        defer { t.stop() }
        let roots = newRoots(cg, suffix: "-r")
        try ext.setUp(rootPid: t.pid, images: scratch.images, cgroupRoots: roots, log: .silent)
        let r = { (h: String, sub: String, file: String) in try cg.read(cg.path(h, sub, suffix: "-r") + "/" + file) }
        #expect(try r("memory", "", "memory.limit_in_bytes") == "67108864")
        #expect(try r("memory", "", "memory.soft_limit_in_bytes") == "33554432")
        #expect(try r("memory", "sub", "memory.limit_in_bytes") == "33554432")
        #expect(try r("cpu", "", "cpu.shares") == "512")
        #expect(try r("cpu", "", "cpu.cfs_period_us") == "50000")
        #expect(try r("cpu", "", "cpu.cfs_quota_us") == "25000")
        #expect(try r("pids", "", "pids.max") == "77")
        #expect(try r("pids", "sub", "pids.max") == "11")
        for h in Self.v1 { #expect(try cgroupOf(t.pid, h) == cg.cgroupPath(suffix: "-r"), "\(h)") }

        // a task of the second set goes into ctr/sub's new place
        let t2 = try Self.target()
        defer { t2.stop() }
        try ext.moveTask(t2.pid, setID: 2, images: scratch.images, cgroupRoots: roots, log: .silent)
        #expect(try cgroupOf(t2.pid, "pids") == cg.cgroupPath("sub", suffix: "-r"))
        #expect(try cgroupOf(t2.pid, "memory") == cg.cgroupPath(suffix: "-r"))
    }

    @Test("crit decodes cgroup.img")
    func critReadsImage() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let scratch = try Scratch()
        let f = try V1Fixture(cg)
        try CgroupsDump().dump(pids: [f.root.pid, f.other.pid], rootPid: f.root.pid, images: scratch.images, log: .silent)
        let json = try critDecode(scratch.sub(CgroupsDump.imageName))
        let entry = try #require((json["entries"] as? [[String: Any]])?.first)
        #expect((entry["sets"] as? [Any])?.count == 2)
        #expect((entry["controllers"] as? [Any])?.isEmpty == false)
    }

    @Test("the DumpExtension entry records every task of a seized tree")
    func dumpExtensionOnFrozenTree() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let scratch = try Scratch()
        try cg.make("pids", "ctr")
        // the child moves itself into ctr, then says ready: two tasks, two sets
        let s = try Sleeper(["/bin/sh", "-c", "/bin/sh -c 'echo $$ > \(cg.path("pids", "ctr"))/cgroup.procs && echo ready && exec sleep 1000' & wait"])
        defer { s.stop() }
        let tree = try FrozenTree.freeze(root: s.pid)
        defer { tree.release() }
        let ext = CgroupsDump()
        try ext.dump(tree: tree, images: scratch.images, options: DumpOptions(imagesDir: scratch.path), log: .silent)
        #expect(tree.processes.count == 2)
        #expect(ext.setID(forPid: tree.root.pid) == 1)
        let child = try #require(tree.processes.last?.pid)
        #expect(ext.setID(forPid: child) == 2)
        #expect(ext.rootSetID == 1)
    }

    @Test("manage modes: soft keeps an existing directory's settings, full sets them, strict refuses it")
    func modes() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let scratch = try Scratch()
        let f = try V1Fixture(cg)
        try CgroupsDump().dump(pids: [f.root.pid], rootPid: f.root.pid, images: scratch.images, log: .silent)
        f.root.stop(); f.other.stop()
        let existing = try cg.make("pids", suffix: "-e")
        try cg.write(existing + "/pids.max", "5")
        let roots = newRoots(cg, suffix: "-e")

        let t = try Self.target()
        defer { t.stop() }
        try CgroupsDump(mode: .soft).setUp(rootPid: t.pid, images: scratch.images, cgroupRoots: roots, log: .silent)
        #expect(try cg.read(existing + "/pids.max") == "5")
        #expect(try cg.read(cg.path("memory", suffix: "-e") + "/memory.limit_in_bytes") == "67108864", "created dirs get their settings")
        #expect(try cgroupOf(t.pid, "pids") == cg.cgroupPath(suffix: "-e"))

        try CgroupsDump(mode: .full).setUp(rootPid: t.pid, images: scratch.images, cgroupRoots: roots, log: .silent)
        #expect(try cg.read(existing + "/pids.max") == "77")

        let error = #expect(throws: CheckpointError.self) {
            try CgroupsDump(mode: .strict).setUp(rootPid: t.pid, images: scratch.images, cgroupRoots: roots, log: .silent)
        }
        #expect(error?.message.contains("exists") == true)

        let missing = newRoots(cg, suffix: "-m")
        #expect(throws: CheckpointError.self) {
            try CgroupsDump(mode: .props).setUp(rootPid: t.pid, images: scratch.images, cgroupRoots: missing, log: .silent)
        }
    }

    @Test("deferred settings wait for applySettings")
    func deferredSettings() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let scratch = try Scratch()
        let f = try V1Fixture(cg)
        try CgroupsDump().dump(pids: [f.root.pid], rootPid: f.root.pid, images: scratch.images, log: .silent)
        f.root.stop(); f.other.stop()
        let t = try Self.target()
        defer { t.stop() }
        let ext = CgroupsDump(deferSettings: true)
        let roots = newRoots(cg, suffix: "-d")
        try ext.setUp(rootPid: t.pid, images: scratch.images, cgroupRoots: roots, log: .silent)
        #expect(try cg.read(cg.path("pids", suffix: "-d") + "/pids.max") == "max")
        try ext.applySettings(images: scratch.images, cgroupRoots: roots, log: .silent)
        #expect(try cg.read(cg.path("pids", suffix: "-d") + "/pids.max") == "77")
    }

    @Test("rollBack removes the directories the restore made, and only those")
    func rollBack() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let scratch = try Scratch()
        let f = try V1Fixture(cg)
        try CgroupsDump().dump(pids: [f.root.pid], rootPid: f.root.pid, images: scratch.images, log: .silent)
        f.root.stop(); f.other.stop()
        let kept = try cg.make("cpu", suffix: "-b")
        let t = try Self.target()
        let ext = CgroupsDump()
        try ext.setUp(rootPid: t.pid, images: scratch.images, cgroupRoots: newRoots(cg, suffix: "-b"), log: .silent)
        #expect(ext.createdDirectories.contains(cg.path("memory", suffix: "-b")))
        #expect(!ext.createdDirectories.contains(kept))
        t.stop()
        ext.rollBack(images: scratch.images, options: RestoreOptions(imagesDir: scratch.path), log: .silent)
        #expect(!FileManager.default.fileExists(atPath: cg.path("memory", suffix: "-b")))
        #expect(!FileManager.default.fileExists(atPath: cg.path("pids", "sub", suffix: "-b")))
        #expect(FileManager.default.fileExists(atPath: kept))
    }

    @Test("v2 (unified) settings and membership")
    func v2RoundTrip() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let scratch = try Scratch()
        let dir = try cg.make("unified", "ctr")
        try cg.write(dir + "/cgroup.max.descendants", "5")
        try cg.write(dir + "/cgroup.max.depth", "3")
        let s = try Sleeper(["/bin/sh", "-c", "echo $$ > \(dir)/cgroup.procs && echo ready && exec sleep 1000"])
        defer { s.stop() }
        let image = try CgroupsDump().dump(pids: [s.pid], rootPid: s.pid, images: scratch.images, log: .silent)
        let unified = try #require(image.entry.controllers.first { $0.cnames == [""] })
        #expect(unified.dirs.map(\.dirName) == ["\(cg.name)/ctr"])
        s.stop()

        let t = try Self.target()
        defer { t.stop() }
        try CgroupsDump().setUp(rootPid: t.pid, images: scratch.images, cgroupRoots: ["unified": cg.cgroupPath(suffix: "-r")], log: .silent)
        let restored = cg.path("unified", suffix: "-r")
        #expect(try cg.read(restored + "/cgroup.max.descendants") == "5")
        #expect(try cg.read(restored + "/cgroup.max.depth") == "3")
        #expect(try cgroupOf(t.pid, "") == cg.cgroupPath(suffix: "-r"))
    }

    @Test("cg_root keys that disagree for one hierarchy are refused")
    func conflictingRoots() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let scratch = try Scratch()
        try cg.make("systemd", "ctr")
        let s = try Sleeper(["/bin/sh", "-c", "echo $$ > \(cg.path("systemd", "ctr"))/cgroup.procs && echo ready && exec sleep 1000"])
        defer { s.stop() }
        try CgroupsDump().dump(pids: [s.pid], rootPid: s.pid, images: scratch.images, log: .silent)
        let t = try Self.target()
        defer { t.stop() }
        let error = #expect(throws: CheckpointError.self) {
            try CgroupsDump().setUp(rootPid: t.pid, images: scratch.images,
                                    cgroupRoots: ["systemd": cg.cgroupPath(suffix: "-x"), "name=systemd": cg.cgroupPath(suffix: "-y")], log: .silent)
        }
        #expect(error?.message.contains("disagree") == true)
        // one key is fine, "name=" or not
        try CgroupsDump().setUp(rootPid: t.pid, images: scratch.images, cgroupRoots: ["systemd": cg.cgroupPath(suffix: "-x")], log: .silent)
        #expect(try cgroupOf(t.pid, "name=systemd") == cg.cgroupPath(suffix: "-x"))
    }
}

@Suite("cgroups: cpuset", .serialized)
struct CpusetTests {
    @Test("a new cpuset gets its cpus and mems before the task joins")
    func cpuset() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let scratch = try Scratch()
        let dir = try cg.make("cpuset", "ctr")
        try cg.write(cg.path("cpuset") + "/cpuset.cpus", "0")
        try cg.write(cg.path("cpuset") + "/cpuset.mems", "0")
        try cg.write(dir + "/cpuset.cpus", "0")
        try cg.write(dir + "/cpuset.mems", "0")
        let s = try Sleeper(["/bin/sh", "-c", "echo $$ > \(dir)/cgroup.procs && echo ready && exec sleep 1000"])
        defer { s.stop() }
        try CgroupsDump().dump(pids: [s.pid], rootPid: s.pid, images: scratch.images, log: .silent)
        s.stop()
        let t = try Sleeper(["/bin/sh", "-c", "echo ready; exec sleep 1000"])
        defer { t.stop() }
        try CgroupsDump().setUp(rootPid: t.pid, images: scratch.images, cgroupRoots: ["cpuset": cg.cgroupPath(suffix: "-r")], log: .silent)
        #expect(try cg.read(cg.path("cpuset", suffix: "-r") + "/cpuset.cpus") == "0")
        #expect(try cgroupOf(t.pid, "cpuset") == cg.cgroupPath(suffix: "-r"))
    }

    @Test("a tree in the root cpuset moved under a new root: the new cpuset takes its parent's cpus")
    func rootCpuset() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let scratch = try Scratch()
        let s = try Sleeper(["/bin/sh", "-c", "echo ready; exec sleep 1000"])
        defer { s.stop() }
        #expect(try cgroupOf(s.pid, "cpuset") == "/")
        try CgroupsDump().dump(pids: [s.pid], rootPid: s.pid, images: scratch.images, log: .silent)
        try CgroupsDump().setUp(rootPid: s.pid, images: scratch.images, cgroupRoots: ["cpuset": cg.cgroupPath(suffix: "-r")], log: .silent)
        #expect(try cg.read(cg.path("cpuset", suffix: "-r") + "/cpuset.cpus") == (try cg.read("/sys/fs/cgroup/cpuset/cpuset.cpus")))
        #expect(try cgroupOf(s.pid, "cpuset") == cg.cgroupPath(suffix: "-r"))
    }
}
