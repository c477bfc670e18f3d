// The two "hosts" of the migration tests and the container that moves between them.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Two network namespaces joined by a veth: host A (10.253.N.1, the source) and host B
/// (10.253.N.2, the destination).
struct MigrationHosts {
    let name: String
    let subnet: Int
    var pathA: String { "/var/run/netns/\(name)a" }
    var pathB: String { "/var/run/netns/\(name)b" }
    var source: String { "10.253.\(subnet).1" }
    var destination: String { "10.253.\(subnet).2" }

    init() throws {
        name = "mig-" + String(format: "%06x", UInt32.random(in: 0...0xffffff))
        subnet = Int.random(in: 1...250)
        let ip = "/usr/sbin/ip"
        let steps: [[String]] = [
            [ip, "netns", "add", name + "a"],
            [ip, "netns", "add", name + "b"],
            [ip, "link", "add", name + "a", "netns", name + "a", "type", "veth", "peer", "name", name + "b", "netns", name + "b"],
            [ip, "-n", name + "a", "addr", "add", source + "/30", "dev", name + "a"],
            [ip, "-n", name + "b", "addr", "add", destination + "/30", "dev", name + "b"],
        ] + ["a", "b"].flatMap { side in [
            [ip, "-n", name + side, "link", "set", name + side, "up"],
            [ip, "-n", name + side, "link", "set", "lo", "up"],
        ] }
        for s in steps {
            let o = Cmd.run(s)
            if !o.ok { tearDown(); throw TestFailure("\(o)") }
        }
    }

    func tearDown() {
        Cmd.run(["/usr/sbin/ip", "netns", "del", name + "a"])
        Cmd.run(["/usr/sbin/ip", "netns", "del", name + "b"])
    }
}

/// Host B's own copy of the container's network namespace: the same address, as on
/// another machine, joined to the test by a veth without an address on our side. Until
/// `takeOver()` routes the container's address to it, the address stays with host A's
/// namespace, where the killed source container may still hold its sockets while its
/// memory is freed (the destination restores in parallel with that).
struct MovedNetwork {
    let name: String
    let original: TestNetwork
    var path: String { "/var/run/netns/\(name)" }

    init(of original: TestNetwork) throws {
        self.original = original
        name = original.name + "b"
        let ip = "/usr/sbin/ip"
        let steps: [[String]] = [
            [ip, "netns", "add", name],
            [ip, "link", "add", name + "h", "type", "veth", "peer", "name", name + "c"],
            [ip, "link", "set", name + "c", "netns", name],
            [ip, "link", "set", name + "h", "up"],
            [ip, "-n", name, "addr", "add", original.containerAddress + "/30", "dev", name + "c"],
            [ip, "-n", name, "link", "set", name + "c", "up"],
            [ip, "-n", name, "link", "set", "lo", "up"],
        ]
        for s in steps {
            let o = Cmd.run(s)
            if !o.ok { tearDown(); throw TestFailure("\(o)") }
        }
    }

    /// The bundle's config.json: its network namespace is this one.
    func join(bundle: String) throws {
        let path = bundle + "/config.json"
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        var linux = config["linux"] as! [String: Any]
        linux["namespaces"] = (linux["namespaces"] as! [[String: Any]]).map { ns in
            ns["type"] as? String == "network" ? ["type": "network", "path": self.path] : ns
        }
        config["linux"] = linux
        try JSONSerialization.data(withJSONObject: config, options: .prettyPrinted).write(to: URL(fileURLWithPath: path))
    }

    /// The container's address is reached through host B from now on.
    func takeOver() throws {
        let o = Cmd.run(["/usr/sbin/ip", "route", "replace", original.containerAddress + "/32", "dev", name + "h", "src", original.hostAddress])
        if !o.ok { throw TestFailure("\(o)") }
    }

    func tearDown() {
        Cmd.run(["/usr/sbin/ip", "link", "del", name + "h"])
        Cmd.run(["/usr/sbin/ip", "netns", "del", name])
    }
}

/// The migrate workload in a busybox bundle, run by runc in host A's runc root (its own
/// network namespace joined to the test by a veth), and a copy of the bundle for host B.
final class MigrationSetup {
    static let nsenter = "/usr/bin/nsenter"
    let scratch: Scratch
    let net: TestNetwork
    let netB: MovedNetwork
    let hosts: MigrationHosts
    let id: String
    let rootA: String, rootB: String
    let bundle: Bundle, bundleB: Bundle

    /// The migrate workload with `mib` MiB rewritten at `rate` MiB/s, or, given `args`, a
    /// busybox process of those arguments.
    init(scratch: Scratch, mib: Int = 32, rate: Int = 8, args: [String]? = nil) throws {
        self.scratch = scratch
        id = "oct-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        rootA = scratch.sub("runc-a")
        rootB = scratch.sub("runc-b")
        let net = try TestNetwork()
        self.net = net
        let hosts: MigrationHosts, netB: MovedNetwork
        do { netB = try MovedNetwork(of: net) } catch { net.tearDown(); throw error }
        do { hosts = try MigrationHosts() } catch { netB.tearDown(); net.tearDown(); throw error }
        self.hosts = hosts
        self.netB = netB
        let binary = scratch.sub("migrate-workload")
        do {
            bundle = try Bundle.make(at: scratch.sub("bundle"), args: args ?? ["/bin/migrate-workload", "\(mib)", "\(MigrateContainerTests.port)", "\(rate)"]) {
                net.join(&$0)
            }
            if args == nil {
                let cc = Cmd.run([Env.cc, "-O2", "-static", "-o", binary, Env.packageRoot + "/scripts/migrate-workload.c"])
                guard cc.ok else { throw TestFailure("cc: \(cc)") }
                try FileManager.default.copyItem(atPath: binary, toPath: bundle.rootfs + "/bin/migrate-workload")
            }
            bundleB = try bundle.copy(to: scratch.sub("bundle-b"))
            try netB.join(bundle: bundleB.path)
            // Host B's own cgroups, as on another machine: B's runc restores while A's runc
            // still tears the container down, and would share (and lose) its cgroup.
            try Self.setCgroupsPath("/\(id)-b", bundle: bundleB.path)
        } catch { hosts.tearDown(); netB.tearDown(); net.tearDown(); throw error }
    }

    static func setCgroupsPath(_ path: String, bundle: String) throws {
        let file = URL(fileURLWithPath: bundle + "/config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
        var linux = config["linux"] as! [String: Any]
        linux["cgroupsPath"] = path
        config["linux"] = linux
        try JSONSerialization.data(withJSONObject: config, options: .prettyPrinted).write(to: file)
    }

    /// Runs the container in host A.
    func run() throws {
        let run = Cmd.sh("\(Env.runc) --root \(rootA) run -d --bundle \(bundle.path) \(id) </dev/null >\(bundle.path)/run.out 2>\(bundle.path)/run.err", timeout: 30)
        guard run.ok else { throw TestFailure("runc run: \(run)\n\(readFile(bundle.path + "/run.err") ?? "")") }
    }

    /// Runs the workload in host A; a client connection to it.
    func start() throws -> Int32 {
        try run()
        guard let fd = waitForConnection(net.containerAddress, MigrateContainerTests.port) else {
            throw TestFailure("the workload does not answer: \(tail(bundle.path + "/run.err"))")
        }
        return fd
    }

    /// `receive` in host B, in the background (killed at the scratch area's teardown);
    /// returns once it listens.
    func startReceive(bundle: String, work: String, output: String) throws {
        let receive = Cmd.sh("\(Self.nsenter) --net=\(hosts.pathB) \(Env.binary) receive --listen \(hosts.destination):\(MigrateContainerTests.receivePort) "
                             + "--bundle \(bundle) --root \(rootB) --id \(id) --work \(work) -o receive.log -v4 </dev/null >\(output) 2>&1 & echo $!")
        guard let pid = Int32(receive.out.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw TestFailure("\(receive)") }
        scratch.onTearDown { if access("/proc/\(pid)", F_OK) == 0 { Glibc.kill(pid, SIGKILL) } }
        guard waitFor(10, { (readFile(output) ?? "").contains("listening") }) else { throw TestFailure("receive: \(readFile(output) ?? "")") }
    }

    /// `migrate` run in host A, to `receive`'s port in host B.
    func migrate(work: String, lazy: Bool = false) -> Output {
        Cmd.run([Self.nsenter, "--net=" + hosts.pathA, Env.binary, "migrate", "--to", "\(hosts.destination):\(MigrateContainerTests.receivePort)",
                 "--root", rootA, "--work", work, "--rounds", "4"] + (lazy ? ["--lazy-pages"] : []) + [id], timeout: 120)
    }

    /// runc's status of the container in `root`; nil when it does not know it.
    func status(_ root: String) -> String? { state(root)?["status"] as? String }

    func pid(_ root: String) -> Int32? { (state(root)?["pid"] as? Int).map { Int32($0) } }

    private func state(_ root: String) -> [String: Any]? {
        let o = Cmd.run([Env.runc, "--root", root, "state", id], timeout: 10)
        guard o.ok else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(o.out.utf8)) as? [String: Any]
    }

    func tearDown() {
        for root in [rootA, rootB] where status(root) != nil {
            Cmd.run([Env.runc, "--root", root, "kill", id, "KILL"], timeout: 10)
            waitFor(5) { let s = status(root); return s == nil || s == "stopped" }
            Cmd.run([Env.runc, "--root", root, "delete", "-f", id], timeout: 20)
        }
        hosts.tearDown()
        netB.tearDown()
        net.tearDown()
    }
}
