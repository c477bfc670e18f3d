import Foundation
import SystemTestSupport
import Testing
import Engine
import LinuxKernel
import Images
import NamespaceDump
import ProcFS
#if canImport(Glibc)
import Glibc
#endif

@Suite("time namespace", .serialized)
struct TimeNamespaceTests {
    @Test("timens_offsets parse and print")
    func parseOffsets() throws {
        let o = try TimeNamespaceOffsets.parse("monotonic        5000         0\nboottime        -20   500000000\n")
        #expect(o.monotonic == ClockValue(seconds: 5000, nanoseconds: 0))
        #expect(o.boottime == ClockValue(seconds: -20, nanoseconds: 500_000_000))
        #expect(o.procText == "1 5000 0\n7 -20 500000000\n")
        #expect(try TimeNamespaceOffsets.parse(o.procText) == o)
        #expect(throws: CheckpointError.self) { try TimeNamespaceOffsets.parse("monotonic 1 0\n") }
        #expect(ClockValue(seconds: 1, nanoseconds: -1) == ClockValue(seconds: 0, nanoseconds: 999_999_999))
    }

    @Test("offsets continue the dumped clocks from the host's")
    func continuingOffsets() {
        var e = TimensEntry()
        e.monotonic.tvSec = 10_000; e.monotonic.tvNsec = 100
        e.boottime.tvSec = 20_000; e.boottime.tvNsec = 0
        let o = TimeNamespaceOffsets.continuing(from: e, hostMonotonic: ClockValue(seconds: 3_000, nanoseconds: 200),
                                                hostBoottime: ClockValue(seconds: 3_500, nanoseconds: 0))
        #expect(o.monotonic == ClockValue(seconds: 6_999, nanoseconds: 999_999_900))
        #expect(o.boottime == ClockValue(seconds: 16_500, nanoseconds: 0))
    }

    @Test("a time namespace's clocks are dumped, and a root made after prepareTimeNamespace continues them")
    func roundTrip() throws {
        let scratch = try Scratch()
        let src = try Sleeper(["/usr/bin/unshare", "--time", "--monotonic", "5000", "--boottime", "7000",
                               "sh", "-c", "echo ready; exec sleep 1000"])
        defer { src.stop() }
        #expect(nsLink(src.pid, "time") != nsLink(getpid(), "time"))
        let kinds = try NamespaceImagesDump().dump(rootPid: src.pid, images: scratch.images, log: .silent)
        #expect(kinds == [.time])
        let id = try #require(NamespaceImageIDs.forRoot(try NamespaceSet.read(pid: src.pid))[.time])
        let entry = try TimeNamespace.load(id: id, images: scratch.images)
        var host = Glibc.timespec()
        clock_gettime(CLOCK_BOOTTIME, &host)
        #expect(abs(Int64(entry.boottime.tvSec) - (Int64(host.tv_sec) + 7000)) <= 1)
        let decoded = try critDecode(scratch.file(.timens(id)))
        #expect((decoded["entries"] as? [Any])?.count == 1)
        src.stop()

        let ext = NamespaceImagesDump()
        #expect(try ext.namespaceFlags(images: scratch.images) & 0x80 == 0)
        #expect(try ext.needsTimeNamespace(images: scratch.images))
        // A thread of its own makes the namespace and spawns the "root" (posix_spawn execs,
        // which enters time_for_children).
        let child: pid_t = try NamespaceJoin.run(in: getpid(), []) {
            try ext.prepareTimeNamespace(images: scratch.images, log: .silent)
            var pid: pid_t = 0
            let argv = ["/bin/sleep", "1000"]
            var cargs = argv.map { strdup($0) } + [nil]
            defer { for p in cargs { free(p) } }
            let r = posix_spawn(&pid, argv[0], nil, nil, &cargs, environ)
            if r != 0 { throw CheckpointError.errno("posix_spawn", r) }
            return pid
        }
        defer { kill(child, SIGKILL); var st: Int32 = 0; waitpid(child, &st, 0) }
        // the exec moves the child into the prepared namespace shortly after the spawn returns
        for _ in 0..<100 where nsLink(child, "time") == nsLink(getpid(), "time") { usleep(10_000) }
        #expect(nsLink(child, "time") != nsLink(getpid(), "time"))
        let offsets = try TimeNamespaceOffsets.read(pid: child)
        #expect(abs(offsets.monotonic.seconds - 5000) <= 2)
        #expect(abs(offsets.boottime.seconds - 7000) <= 2)
        let uptime = try must(["/usr/bin/nsenter", "-t", "\(child)", "-T", "cat", "/proc/uptime"])
        let seconds = Double(uptime.split(separator: " ")[0]) ?? 0
        #expect(seconds >= Double(entry.boottime.tvSec) - 1 && seconds < Double(entry.boottime.tvSec) + 30)
        // setUp only checks a time namespace (offsets are fixed once a task is in it)
        try ext.setUp(rootPid: child, images: scratch.images, log: .silent)
    }
}

extension TimeNamespaceTests {
    @Test("CRIU's empty timens-0.img means no time namespace")
    func emptyCriuImage() throws {
        let scratch = try Scratch()
        try scratch.images.write(.timens(0), [TimensEntry]())
        let ext = NamespaceImagesDump()
        #expect(try !ext.needsTimeNamespace(images: scratch.images))
        let t = try Sleeper(["/bin/sh", "-c", "echo ready; exec sleep 1000"])
        defer { t.stop() }
        try ext.setUp(rootPid: t.pid, images: scratch.images, log: .silent)
    }
}

@Suite("net namespace", .serialized)
struct NetNamespaceTests {
    static let newnet = NamespaceKind.net.cloneFlag.rawValue

    static func loDown() throws -> Sleeper {
        try Sleeper(["/usr/bin/unshare", "--net", "sh", "-c", "echo ready; exec sleep 1000"])
    }

    @Test("lo and its up state are dumped and restored")
    func loopback() throws {
        let scratch = try Scratch()
        let src = try Sleeper(["/usr/bin/unshare", "--net", "sh", "-c", "ip link set lo up && echo ready && exec sleep 1000"])
        defer { src.stop() }
        let kinds = try NamespaceImagesDump().dump(rootPid: src.pid, images: scratch.images, log: .silent)
        #expect(kinds == [.net])
        let id = try #require(NamespaceImageIDs.forRoot(try NamespaceSet.read(pid: src.pid))[.net])
        let devices = try scratch.images.read(.netdev(id), as: NetDeviceEntry.self)
        #expect(devices.map(\.name) == ["lo"])
        #expect((devices.first?.flags ?? 0) & 1 == 1)
        try critDecode(scratch.file(.netdev(id)))
        try critDecode(scratch.file(.netns(id)))
        src.stop()

        let dst = try Self.loDown()
        defer { dst.stop() }
        #expect(try NetNamespace.isUp("lo", pid: dst.pid) == false)
        #expect(try NamespaceImagesDump().namespaceFlags(images: scratch.images) == Self.newnet)
        try NamespaceImagesDump().setUp(rootPid: dst.pid, images: scratch.images, log: .silent)
        #expect(try NetNamespace.isUp("lo", pid: dst.pid))
        #expect(try must(["/usr/bin/nsenter", "-t", "\(dst.pid)", "-n", "ip", "-o", "addr", "show", "lo"]).contains("127.0.0.1"))
    }

    @Test("a device other than lo is refused with its name")
    func refusesOtherDevices() throws {
        let scratch = try Scratch()
        let src = try Sleeper(["/usr/bin/unshare", "--net", "sh", "-c",
                               "ip link add ocv0 type veth peer name ocv1 && echo ready && exec sleep 1000"])
        defer { src.stop() }
        let error = #expect(throws: CheckpointError.self) {
            try NamespaceImagesDump().dump(rootPid: src.pid, images: scratch.images, log: .silent)
        }
        #expect(error?.code == .unsupported)
        #expect(error?.message.contains("ocv0") == true || error?.message.contains("ocv1") == true)
        // the same namespace passed as empty_ns is not dumped at all
        let kinds = try NamespaceImagesDump().dump(rootPid: src.pid, images: scratch.images, emptyNamespaces: Self.newnet, log: .silent)
        #expect(kinds.isEmpty)
    }

    @Test("an empty net namespace gets lo up")
    func emptyNamespace() throws {
        let scratch = try Scratch()
        let ext = NamespaceImagesDump(emptyNamespaces: Self.newnet)
        #expect(try ext.namespaceFlags(images: scratch.images) == Self.newnet)
        let dst = try Self.loDown()
        defer { dst.stop() }
        var options = RestoreOptions(imagesDir: scratch.path)
        options.emptyNamespaces = Self.newnet
        try ext.setUp(RestoreSession(options: options, log: .silent, rootPid: dst.pid))
        #expect(try NetNamespace.isUp("lo", pid: dst.pid))
    }
}
