@testable import CriuRPC
import LinuxKernel
import Foundation
import Images
import SystemTestSupport
import Testing

@Suite("criu_opts → engine options")
struct CriuOptsMappingTests {
    @Test("dump options: pid-independent fields, ext_mnt and external mnt[] entries")
    func dumpMapping() throws {
        var o = CriuOpts()
        o.leaveRunning = true
        o.shellJob = true
        o.fileLocks = true
        o.tcpEstablished = true
        o.root = "/bundle/rootfs"
        o.freezeCgroup = "/sys/fs/cgroup/freezer/ct"
        o.emptyNs = UInt32(CloneFlags.newNet.rawValue)
        var m = ExtMountMap()
        m.key = "/proc/keys"
        m.val = "/dev/null"
        o.extMnt = [m]
        o.external = ["mnt[/etc/hosts]:hosts", "net[4026532000]:extRootNetNS"]
        o.extUnixSk = true
        try o.refuseUnsupported()
        let d = try o.dumpOptions(imagesDir: "/img")
        #expect(d.extUnixSk)
        #expect(d.imagesDir == "/img")
        #expect(d.leaveRunning && d.shellJob && d.fileLocks && d.tcpEstablished)
        #expect(d.root == "/bundle/rootfs")
        #expect(d.freezeCgroup == "/sys/fs/cgroup/freezer/ct")
        #expect(d.emptyNamespaces == 0x4000_0000)
        #expect(d.externalMounts == ["/proc/keys": "/dev/null", "/etc/hosts": "hosts"])
        #expect(d.externalNamespaces == ["net[4026532000]": "extRootNetNS"])
    }

    @Test("restore options: sibling, cg_root (no ctrl = every controller), inherit_fd in our table")
    func restoreMapping() throws {
        var o = CriuOpts()
        o.rstSibling = true
        o.tcpEstablished = true
        o.root = "/run/runc/ct/criu-root"
        var all = CgroupRoot()
        all.path = "/ct"
        var mem = CgroupRoot()
        mem.ctrl = "memory"
        mem.path = "/parent/ct"
        o.cgRoot = [all, mem]
        var i = InheritFd()
        i.key = "pipe:[1234]"
        i.fd = 1
        o.inheritFd = [i]
        let r = try o.restoreOptions(imagesDir: "/img")
        #expect(r.detach && r.restoreSibling && r.tcpEstablished)
        #expect(r.root == "/run/runc/ct/criu-root")
        #expect(r.cgroupRoots == ["": "/ct", "memory": "/parent/ct"])
        #expect(r.inheritFds == ["pipe:[1234]": 1])

        i.fd = 4095
        o.inheritFd = [i]
        #expect(throws: CheckpointError.self) { try o.restoreOptions(imagesDir: "/img") }
    }

    @Test("options the engine cannot honour are refused with their name",
          arguments: ["lsm_profile", "ps", "join_ns", "empty_ns", "external"])
    func refused(_ name: String) {
        var o = CriuOpts()
        switch name {
        case "lsm_profile": o.lsmProfile = "apparmor:docker-default"
        case "ps": o.ps.fd = 5  // a connected socket handed over; address and port are served
        case "join_ns":
            var j = JoinNamespace()
            j.ns = "net"
            j.nsFile = "/proc/1/ns/net"
            o.joinNs = [j]
        case "empty_ns": o.emptyNs = 0x2000_0000
        default: o.external = ["dev[1:2]:x"]
        }
        do {
            try o.refuseUnsupported()
            Issue.record("\(name) was accepted")
        } catch let e as CheckpointError {
            #expect(e.code == .unsupported)
            #expect(e.message.contains(name), "\(e.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("runc's --page-server (ps address and port) reaches the dump; a ps without a port is refused")
    func pageServer() throws {
        var o = CriuOpts()
        o.ps.address = "10.0.0.2"
        o.ps.port = 27000
        try o.refuseUnsupported()
        let ps = try #require(try o.dumpOptions(imagesDir: "/img").pageServer)
        #expect(ps.host == "10.0.0.2" && ps.port == 27000)
        #expect(try CriuOpts().dumpOptions(imagesDir: "/img").pageServer == nil)
        o.ps.port = 0
        #expect(throws: CheckpointError.self) { try o.dumpOptions(imagesDir: "/img") }
    }

    @Test("leave_stopped and the mount permissions LXC passes are accepted; leave_stopped reaches the engine")
    func acceptedForLXC() throws {
        var o = CriuOpts()
        o.leaveStopped = true
        o.extSharing = true
        o.extMasters = true
        o.enableFs = ["hugetlbfs", "tracefs"]
        try o.refuseUnsupported()
        #expect(try o.dumpOptions(imagesDir: "/img").leaveStopped)
        #expect(o.ignoredOptions.contains("ext_sharing") && o.ignoredOptions.contains("ext_masters"))
    }

    @Test("LXC's auto_ext_mnt, external tty[RDEV:DEV] and apparmor:unconfined reach the engine; a malformed tty is refused")
    func lxcExternals() throws {
        var o = CriuOpts()
        o.autoExtMnt = true
        o.external = ["tty[8800:1a]", "mnt[/lib]:lib"]
        try o.refuseUnsupported()
        let dump = try o.dumpOptions(imagesDir: "/img")
        #expect(dump.autoExternalMounts && dump.externalTerminals == ["tty[8800:1a]"] && dump.externalMounts == ["/lib": "lib"])
        #expect(try o.restoreOptions(imagesDir: "/img").autoExternalMounts)
        var mnt = CriuOpts()
        mnt.external = ["mnt[]"]
        #expect(mnt.autoExternalMounts)
        #expect(try mnt.externalMounts().isEmpty)
        if !CriuOpts.appArmorEnabled {
            var aa = CriuOpts()
            aa.external = ["apparmor:unconfined"]
            #expect(throws: Never.self) { try aa.refuseUnsupported() }
        }
        var bad = CriuOpts()
        bad.external = ["tty[zz:1]"]
        let e = #expect(throws: CheckpointError.self) { try bad.refuseUnsupported() }
        #expect(e?.message.contains("expected tty[RDEV:DEV]") == true, "\(e?.message ?? "")")
    }

    @Test("config file: options apply over the request, a missing file is ignored, unknown ones are refused")
    func configFile() throws {
        let path = NSTemporaryDirectory() + "criurpc-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).conf"
        defer { unlink(path) }
        try "# runc.conf\ntcp-close\nlog-file /tmp/x.log\nexternal mnt[/a]:b\n".write(toFile: path, atomically: true, encoding: .utf8)
        var o = CriuOpts()
        try CriuConfigFile.apply(path: path, to: &o)
        #expect(o.tcpClose)
        #expect(o.logFile == "/tmp/x.log")
        #expect(try o.externalMounts() == ["/a": "b"])

        var untouched = CriuOpts()
        try CriuConfigFile.apply(path: "/nonexistent/runc.conf", to: &untouched)
        #expect(untouched == CriuOpts())

        try "lazy-pages\n".write(toFile: path, atomically: true, encoding: .utf8)
        var refused = CriuOpts()
        try CriuConfigFile.apply(path: path, to: &refused)
        // Restores take lazy_pages (from a lazy-pages daemon); a dump serves them on ps.port.
        #expect(throws: Never.self) { try refused.refuseUnsupported() }
        let lazyDump = #expect(throws: CheckpointError.self) { try refused.dumpOptions(imagesDir: "/img") }
        #expect(lazyDump?.code == .invalidArgument && lazyDump?.message.contains("lazy_pages: needs ps.port") == true)

        try "no-such-option 1\n".write(toFile: path, atomically: true, encoding: .utf8)
        var unknown = CriuOpts()
        #expect(throws: CheckpointError.self) { try CriuConfigFile.apply(path: path, to: &unknown) }
    }

    @Test("cr_errno: the errno an error carries, else one from its code")
    func errnoMapping() {
        #expect(RPCFailure(CheckpointError.errno("open x", ENOENT)).errno == ENOENT)
        #expect(RPCFailure(CheckpointError(.busy, "pid 5 is in use")).errno == EBUSY)
        #expect(RPCFailure(CheckpointError(.invalidState, "x")).errno == EINVAL)
        #expect(RPCFailure(CheckpointError(.image, "bad", cause: POSIXError(.EIO))).errno == EIO)
        // Down the cause chain, typed: no errno is read back out of a message.
        let knob = CheckpointError.errno("write memory.kmem.limit_in_bytes", .EOPNOTSUPP)
        #expect(RPCFailure(CheckpointError(.invalidState, "restore cgroups", cause: knob)).errno == EOPNOTSUPP)
        #expect(RPCFailure(CheckpointError(.invalidState, "text with (errno 5) inside")).errno == EINVAL)
    }

    @Test("SCM_RIGHTS: descriptors sent with a message arrive with it")
    func passFds() throws {
        var sv: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0)
        defer { close(sv[0]); close(sv[1]) }
        let a = RPCSocket(fd: sv[0]), b = RPCSocket(fd: sv[1])
        var resp = CriuResp()
        resp.type = .notify
        resp.success = true
        resp.notify.script = "orphan-pts-master"
        let devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(devnull) }
        try a.send(resp, fds: [devnull])
        #expect(try a.peerPid() == getpid())
        let (got, fds) = try #require(try b.receive(CriuResp.self))
        #expect(got == resp)
        #expect(fds.count == 1)
        for fd in fds {
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) == "/dev/null")
            close(fd)
        }
        close(sv[0])
        sv[0] = -1
        #expect(try b.receive() == nil, "a closed peer reads as the end")
    }
}
