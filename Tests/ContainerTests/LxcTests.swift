// LXC 5.0 (Debian's lxc) with the engine as its `criu`: lxc-checkpoint runs `criu --version`,
// then `criu dump` / `criu restore` with its own command line (--ext-mount-map auto, the
// container's library binds as external mounts, its console as an external tty handed
// back by --inherit-fd). The container, made by `lxc-create -t busybox` in the test's own
// lxcpath, counts into /tmp/count of its directory rootfs, which the host reads.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One LXC container in an lxcpath of the test's own; its monitor is LXC's daemon, stopped
/// with the container (lxc-stop -k), leftovers killed by pid.
final class LxcContainer {
    static let tools = ["lxc-create", "lxc-start", "lxc-checkpoint", "lxc-info", "lxc-freeze", "lxc-unfreeze", "lxc-stop", "lxc-destroy"].map { "/usr/bin/" + $0 }
    static var installed: Bool { geteuid() == 0 && tools.allSatisfy(ClientEnv.executable) }

    let dir: String
    let name: String
    let path: String
    var lxcpath: String { dir + "/lxcpath" }
    var rootfs: String { lxcpath + "/" + name + "/rootfs" }

    init() throws {
        dir = try clientScratch("lxc")
        name = "oct-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        path = ClientEnv.path(criuDirectory: try ClientEnv.criuDirectory(in: dir))
        // No network (lxcbr0 is not here), no AppArmor (the kernel has none).
        let config = "lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n"
        try config.write(toFile: dir + "/default.conf", atomically: true, encoding: .utf8)
        let o = run(["lxc-create", "-f", dir + "/default.conf", "-t", "busybox"])
        guard o.ok else {
            tearDown()
            throw TestFailure("lxc-create -t busybox: \(o)")
        }
        // LXC 5.0.2's monitor after lxc-checkpoint -r never allocates the container's ttys
        // yet walks lxc.tty.max of them when a command client (lxc-info) hangs up, and
        // segfaults (address 0x1008): the template's 5 ttys go, the console stays.
        let configPath = lxcpath + "/" + name + "/config"
        let edited = (readFile(configPath) ?? "").replacingOccurrences(of: "lxc.tty.max = 5", with: "lxc.tty.max = 0")
        try edited.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// An lxc tool on this container, with our `criu` first on PATH and a debug log in DIR/NAME.log.
    @discardableResult
    func run(_ args: [String], log: String? = nil, timeout: Double = 60) -> Output {
        var argv = ["/usr/bin/" + args[0], "-P", lxcpath, "-n", name]
        if let log { argv += ["-l", "DEBUG", "-o", dir + "/" + log + ".log"] }
        return Cmd.run(argv + args.dropFirst(), timeout: timeout, extraEnv: ["PATH": path])
    }

    /// `lxc-start` with a shell counting 1, 2, 3, ... into /tmp/count every 0.2 s as init.
    func startCounter() throws {
        let o = run(["lxc-start", "--", "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; sleep 0.2; done"],
                    log: "start")
        guard o.ok else { throw TestFailure("lxc-start: \(o)\n\(tail(dir + "/start.log"))") }
    }

    var counts: [Int] { ClientEnv.counts(readFile(rootfs + "/tmp/count") ?? "") }

    /// The container's init as LXC knows it (lxc-info -p).
    var initPid: Int32? { Int32(run(["lxc-info", "-pH"], timeout: 10).out.trimmingCharacters(in: .whitespacesAndNewlines)) }

    /// RUNNING, STOPPED, FROZEN, ... from lxc-info -s.
    var state: String {
        let o = run(["lxc-info", "-sH"], timeout: 10)
        return o.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func tearDown() {
        run(["lxc-stop", "-k"], timeout: 30)
        run(["lxc-destroy", "-f"], timeout: 30)
        ClientDaemon.cleanUp(dir, marker: dir)
        for prefix in ["lxc.payload.", "lxc.monitor."] { ClientDaemon.removeCgroups(prefix + name) }
        // LXC's own, shared by its containers: removed only when empty (rmdir).
        ClientDaemon.removeCgroups("lxc.pivot")
    }
}

@Suite("LXC 5.0 (lxc-checkpoint) with the engine as criu", .serialized,
       .enabled(if: LxcContainer.installed, "needs root and lxc (lxc-create, lxc-checkpoint, ...): make deps"))
struct LxcTests {
    init() throws {
        try #require(ClientEnv.executable(Env.binary), "no engine binary at \(Env.binary): swift build first, or set OCICHECKPOINT_BIN")
    }

    @Test("lxc-checkpoint -s stops the container; lxc-checkpoint -r: it counts on from where it stopped")
    func checkpointStopThenRestore() throws {
        let c = try LxcContainer()
        defer { c.tearDown() }
        try c.startCounter()
        try #require(waitFor(10) { c.counts.count >= 5 }, "the container does not count: \(c.state)\n\(tail(c.dir + "/start.log"))")

        let images = c.dir + "/checkpoint"
        let dump = c.run(["lxc-checkpoint", "-s", "-D", images], log: "checkpoint")
        try #require(dump.ok, "lxc-checkpoint -s: \(dump)\n--- dump.log\n\(tail(images + "/dump.log", 25))")
        #expect(waitFor(10) { c.state == "STOPPED" }, "after lxc-checkpoint -s: \(c.state)")
        let last = c.counts.last ?? 0
        #expect(consecutive(c.counts, from: 1), "count before restore: \(c.counts.suffix(12))")
        usleep(600_000)
        #expect(c.counts.last == last, "the container kept counting after its checkpoint")

        let restore = c.run(["lxc-checkpoint", "-r", "-D", images], log: "restore")
        try #require(restore.ok, "lxc-checkpoint -r: \(restore)\n--- restore.log\n\(tail(images + "/restore.log", 25))\n\(tail(c.dir + "/restore.log"))")
        #expect(c.state == "RUNNING", "after lxc-checkpoint -r: \(c.state)")
        // In the cgroups LXC made for it (--cgroup-root CTRL:/lxc.payload.NAME), seen from outside.
        let pid = try #require(c.initPid, "lxc-info -p after restore")
        for controller in ["freezer", "memory", "pids"] {
            #expect(cgroupPath(pid: pid, controller: controller) == "/lxc.payload." + c.name,
                    "\(controller) cgroup of the restored init: \(cgroupPath(pid: pid, controller: controller) ?? "-")")
        }
        // LXC's freezer works on it: frozen, the count stands still; thawed, it goes on.
        let freeze = c.run(["lxc-freeze"], timeout: 20)
        #expect(freeze.ok && c.state == "FROZEN", "lxc-freeze: \(freeze)\nstate \(c.state)")
        usleep(300_000)
        let frozen = c.counts.last ?? 0
        usleep(600_000)
        #expect(c.counts.last == frozen, "counting while frozen: \(frozen) → \(c.counts.last ?? 0)")
        let thaw = c.run(["lxc-unfreeze"], timeout: 20)
        #expect(thaw.ok && c.state == "RUNNING", "lxc-unfreeze: \(thaw)\nstate \(c.state)")
        #expect(waitFor(10) { (c.counts.last ?? 0) >= last + 4 }, "no counting after restore: last \(last), now \(c.counts.suffix(5))")
        // The restored shell's i went on from the checkpointed value: no restart, gap or repeat.
        #expect(consecutive(c.counts, from: 1), "count around \(last): \(c.counts.suffix(12))")
        let stop = c.run(["lxc-stop", "-k"], timeout: 30)
        #expect(stop.ok && waitFor(10) { c.state == "STOPPED" }, "lxc-stop -k: \(stop)\nstate \(c.state)")
    }

    @Test("lxc-checkpoint without -s: a running container runs on, a frozen one stays frozen")
    func checkpointLeavesItAsItWas() throws {
        let c = try LxcContainer()
        defer { c.tearDown() }
        try c.startCounter()
        try #require(waitFor(10) { c.counts.count >= 5 }, "the container does not count: \(c.state)\n\(tail(c.dir + "/start.log"))")

        let running = c.run(["lxc-checkpoint", "-D", c.dir + "/running"], log: "checkpoint-running")
        try #require(running.ok, "lxc-checkpoint: \(running)\n--- dump.log\n\(tail(c.dir + "/running/dump.log", 25))")
        #expect(c.state == "RUNNING", "after lxc-checkpoint: \(c.state)")
        let after = c.counts.last ?? 0
        #expect(waitFor(5) { (c.counts.last ?? 0) >= after + 3 }, "the container stopped counting at \(after)")

        // LXC freezes through --freeze-cgroup; a container frozen before must stay frozen.
        let freeze = c.run(["lxc-freeze"], timeout: 20)
        try #require(freeze.ok && c.state == "FROZEN", "lxc-freeze: \(freeze)\nstate \(c.state)")
        let frozen = c.counts.last ?? 0
        let dump = c.run(["lxc-checkpoint", "-D", c.dir + "/frozen"], log: "checkpoint-frozen")
        try #require(dump.ok, "lxc-checkpoint of a frozen container: \(dump)\n--- dump.log\n\(tail(c.dir + "/frozen/dump.log", 25))")
        #expect(c.state == "FROZEN", "after lxc-checkpoint: \(c.state)")
        usleep(600_000)
        #expect(c.counts.last == frozen, "counting while frozen: \(frozen) → \(c.counts.last ?? 0)")
        let thaw = c.run(["lxc-unfreeze"], timeout: 20)
        #expect(thaw.ok && c.state == "RUNNING", "lxc-unfreeze: \(thaw)\nstate \(c.state)")
        #expect(waitFor(5) { (c.counts.last ?? 0) >= frozen + 3 }, "no counting after lxc-unfreeze")
        #expect(consecutive(c.counts, from: 1), "count: \(c.counts.suffix(12))")
    }
}
