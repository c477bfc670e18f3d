import Foundation
import SystemTestSupport
import Testing
import CgroupDump
import Engine
import LinuxKernel
#if canImport(Glibc)
import Glibc
#endif

@Suite("cgroup freezer", .serialized)
struct CgroupFreezerTests {
    /// A busy shell loop in `dir` (its cgroup.procs).
    static func spinner(in dir: String) throws -> Sleeper {
        try Sleeper(["/bin/sh", "-c", "echo $$ > \(dir)/cgroup.procs && echo ready && while :; do :; done"])
    }

    /// Whether `pid` burns cpu time over a short while.
    static func progresses(_ pid: Int32) throws -> Bool {
        let before = try cpuTicks(pid)
        usleep(300_000)
        return try cpuTicks(pid) > before
    }

    func freezeAndThaw(_ dir: String) throws {
        let s = try Self.spinner(in: dir)
        defer { s.stop() }
        #expect(try Self.progresses(s.pid))
        try CgroupFreezer.freeze(path: dir)
        #expect(try CgroupFreezer.isFrozen(path: dir))
        #expect(try !Self.progresses(s.pid), "a frozen task makes no progress")
        #expect(CgroupFreezer.thaw(path: dir))
        #expect(try Self.progresses(s.pid))
    }

    @Test("v1: freezer.state FROZEN stops a busy task, THAWED resumes it")
    func v1() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let dir = try cg.make("freezer")
        try freezeAndThaw(dir)
        #expect(try cg.read(dir + "/freezer.state") == "THAWED")
    }

    @Test("v2: cgroup.freeze stops a busy task until thawed")
    func v2() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let dir = try cg.make("unified")
        try freezeAndThaw(dir)
        #expect(try CgroupFreezer.state(path: dir) == "frozen 0")
    }

    @Test("an error while frozen still thaws")
    func thawsOnError() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let dir = try cg.make("freezer")
        let s = try Self.spinner(in: dir)
        defer { s.stop() }
        struct Failure: Error {}
        #expect(throws: Failure.self) {
            try CgroupFreezer.whileFrozen(path: dir) {
                #expect((try? CgroupFreezer.isFrozen(path: dir)) == true)
                throw Failure()
            }
        }
        #expect(try cg.read(dir + "/freezer.state") == "THAWED")
        #expect(try Self.progresses(s.pid))
    }

    @Test("the engine's TreeFreezer: a seize under a frozen cgroup, thawed after")
    func treeFreezer() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let dir = try cg.make("freezer")
        let s = try Self.spinner(in: dir)
        defer { s.stop() }
        let freezer = try CgroupTreeFreezer(path: dir)
        let tree = try FrozenTree.freeze(root: s.pid, freezer: freezer)
        #expect(try cg.read(dir + "/freezer.state") == "THAWED")
        #expect(try !Self.progresses(s.pid), "seized")
        tree.release()
        #expect(try Self.progresses(s.pid))
    }

    @Test("a cgroup frozen before the seize is frozen again when the tree is released, and never ran", arguments: ["freezer", "unified"])
    func frozenBeforeStaysFrozen(hierarchy: String) throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let dir = try cg.make(hierarchy)
        let s = try Self.spinner(in: dir)
        defer { s.stop() }
        try CgroupFreezer.freeze(path: dir)
        let ticks = try cpuTicks(s.pid)
        let tree = try FrozenTree.freeze(root: s.pid, freezer: try CgroupTreeFreezer(path: dir))
        tree.release()
        #expect(try CgroupFreezer.isFrozen(path: dir), "released into a thawed cgroup: \((try? CgroupFreezer.state(path: dir)) ?? "?")")
        #expect(try !Self.progresses(s.pid), "a task of the paused cgroup ran after the release")
        #expect(try cpuTicks(s.pid) - ticks <= 1, "the task ran while it was seized and released")
        #expect(procStatus(s.pid)["TracerPid"] == "0", "still traced after the release")
        #expect(CgroupFreezer.thaw(path: dir))
        #expect(try Self.progresses(s.pid))
    }

    @Test("paths that are no freezer are clear errors")
    func badPaths() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let missing = #expect(throws: CheckpointError.self) { try CgroupFreezer.freeze(path: cg.path("freezer", "nope")) }
        #expect(missing?.code == .notFound)
        let memory = try cg.make("memory")
        let wrong = #expect(throws: CheckpointError.self) { try CgroupFreezer.freeze(path: memory) }
        #expect(wrong?.code == .invalidArgument)
        #expect(CgroupFreezer.thaw(path: memory) == false)
    }
}

@Suite("cgroup namespace", .serialized)
struct CgroupNamespaceTests {
    @Test("the namespace root is recorded as cgns_prefix and recreated for the next child")
    func roundTrip() throws {
        let cg = TestCgroups()
        defer { cg.cleanUp() }
        let scratch = try Scratch()
        let top = try cg.make("pids")
        try cg.make("pids", "inner")
        let script = "echo $$ > \(top)/cgroup.procs && exec unshare -C sh -c 'echo $$ > \(top)/inner/cgroup.procs && echo ready && exec sleep 1000'"
        let s = try Sleeper(["/bin/sh", "-c", script])
        defer { s.stop() }
        let image = try CgroupsDump().dump(pids: [s.pid], rootPid: s.pid, images: scratch.images, log: .silent)
        let pids = try #require(image.entry.sets.first?.ctls.first { $0.name == "pids" })
        #expect(pids.path == cg.cgroupPath("inner"))
        #expect(pids.cgnsPrefix == UInt32(cg.cgroupPath().utf8.count))
        s.stop()

        let roots = ["pids": cg.cgroupPath(suffix: "-r")]
        let ext = CgroupsDump()
        let nsRoots = try CgroupsDump.namespaceRoots(images: scratch.images, cgroupRoots: roots)
        #expect(nsRoots.contains { $0.directory == cg.path("pids", suffix: "-r") })
        let child: pid_t = try NamespaceJoin.run(in: getpid(), []) {
            #expect(try ext.prepareCgroupNamespace(images: scratch.images, cgroupRoots: roots, log: .silent))
            var pid: pid_t = 0
            let argv = ["/bin/sleep", "1000"]
            var cargs = argv.map { strdup($0) } + [nil]
            defer { for p in cargs { free(p) } }
            let r = posix_spawn(&pid, "/bin/sleep", nil, nil, &cargs, environ)
            if r != 0 { throw CheckpointError.errno("posix_spawn", r) }
            return pid
        }
        defer { kill(child, SIGKILL); var st: Int32 = 0; waitpid(child, &st, 0) }
        // our own thread went back: this process is where it was
        #expect(try cgroupOf(getpid(), "pids") != cg.cgroupPath(suffix: "-r"))
        try ext.setUp(rootPid: child, images: scratch.images, cgroupRoots: roots, log: .silent)
        #expect(try cgroupOf(child, "pids") == cg.cgroupPath("inner", suffix: "-r"))
        let inside = try must(["/usr/bin/nsenter", "-t", "\(child)", "-C", "cat", "/proc/\(child)/cgroup"])
        #expect(inside.contains(":pids:/inner\n"), "seen from inside its namespace: \(inside)")
    }
}
