// Support for the runc container tests: busybox bundles, runc's view of a container, and
// container ids torn down with the test's scratch area. Commands run through SystemTestSupport's Cmd.

import Foundation
import ProcFS
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

enum Env {
    static let packageRoot = Project.root
    static var binary: String { Project.binary }
    static let runc = "/usr/sbin/runc"
    static let busybox = "/bin/busybox"
    static let cc = "/usr/bin/cc"
    static let helpers = packageRoot + "/Tests/ContainerTests/Helpers"
    static var usable: Bool {
        geteuid() == 0 && FileManager.default.isExecutableFile(atPath: runc)
            && FileManager.default.isExecutableFile(atPath: busybox)
    }
}

/// The path of `pid` in the cgroup v1 hierarchy of `controller` (from /proc/PID/cgroup).
func cgroupPath(pid: Int32, controller: String) -> String? {
    (try? CgroupMembership.read(pid: pid))?.first { $0.controllers.contains(controller) }?.path
}

// MARK: - Containers in a scratch area

extension Scratch {
    /// A fresh container id ("oct-" and 8 random hex digits), killed and deleted (only
    /// it) when the scratch area is torn down.
    func newID() -> String {
        let id = "oct-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        onTearDown {
            let runc = Runc(id: id)
            // A container left paused (frozen) would not die of SIGKILL.
            if runc.status == "paused" { Cmd.run([Env.runc, "resume", id], timeout: 10) }
            if let s = runc.status, s != "stopped" {
                Cmd.run([Env.runc, "kill", id, "KILL"], timeout: 10)
                waitFor(5) { let s = runc.status; return s == nil || s == "stopped" }
            }
            // Also after a failed restore that left state behind; an unknown id is an error, harmless.
            Cmd.run([Env.runc, "delete", "-f", id], timeout: 20)
        }
        return id
    }
}

/// runc's view of one container id.
struct Runc {
    let id: String

    var state: [String: Any]? {
        let o = Cmd.run([Env.runc, "state", id], timeout: 10)
        guard o.ok else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(o.out.utf8)) as? [String: Any]
    }
    /// "created", "running", "paused", "stopped"; nil when runc does not know the id.
    var status: String? { state?["status"] as? String }
    var pid: Int32? { (state?["pid"] as? Int).map { Int32($0) } }

    func exec(_ args: [String], timeout: Double = 20) -> Output {
        Cmd.run([Env.runc, "exec", id] + args, timeout: timeout)
    }

    func checkpoint(images: String, work: String, extra: [String] = []) -> Output {
        Cmd.run([Env.runc, "--criu", Env.binary, "checkpoint", "--image-path", images, "--work-path", work] + extra + [id],
                timeout: 60)
    }

    func restore(bundle: String, images: String, work: String) -> Output {
        Cmd.run([Env.runc, "--criu", Env.binary, "restore", "-d", "--bundle", bundle,
                 "--image-path", images, "--work-path", work, id], timeout: 60)
    }

    /// `runc kill ID KILL`, waits for "stopped", then `runc delete ID`.
    func killAndDelete() -> (kill: Output, delete: Output, stopped: Bool) {
        let k = Cmd.run([Env.runc, "kill", id, "KILL"], timeout: 10)
        let stopped = waitFor(5) { status == "stopped" }
        let d = Cmd.run([Env.runc, "delete", id], timeout: 20)
        return (k, d, stopped)
    }
}

/// A runc bundle with a busybox rootfs (relative applet links).
struct Bundle {
    let path: String
    var rootfs: String { path + "/rootfs" }
    var config: String { path + "/config.json" }

    /// `args` is the container's process; `edit` may change the rest of config.json.
    static func make(at path: String, args: [String], edit: (inout [String: Any]) -> Void = { _ in }) throws -> Bundle {
        let b = Bundle(path: path)
        let fm = FileManager.default
        for dir in ["bin", "tmp", "proc", "sys", "dev", "etc", "data"] {
            try fm.createDirectory(atPath: b.rootfs + "/" + dir, withIntermediateDirectories: true)
        }
        chmod(b.rootfs + "/tmp", 0o1777)
        try fm.copyItem(atPath: Env.busybox, toPath: b.rootfs + "/bin/busybox")
        let list = Cmd.run([Env.busybox, "--list"])
        guard list.ok else { throw TestFailure("busybox --list: \(list)") }
        for applet in list.out.split(separator: "\n") where applet != "busybox" {
            try? fm.createSymbolicLink(atPath: b.rootfs + "/bin/" + applet, withDestinationPath: "busybox")
        }
        let spec = Cmd.run([Env.runc, "spec", "--bundle", path])
        guard spec.ok else { throw TestFailure("runc spec: \(spec)") }
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: b.config))) as! [String: Any]
        var process = config["process"] as! [String: Any]
        process["terminal"] = false
        process["args"] = args
        config["process"] = process
        config["root"] = ["path": "rootfs", "readonly": false]
        edit(&config)
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: b.config))
        return b
    }

    /// `runc run -d --bundle PATH ID`, its output in PATH/run.out and PATH/run.err.
    func run(id: String) throws {
        let o = Cmd.sh("\(Env.runc) run -d --bundle \(path) \(id) </dev/null >\(path)/run.out 2>\(path)/run.err", timeout: 30)
        guard o.ok else { throw TestFailure("runc run \(id): \(o)\n\(readFile(path + "/run.err") ?? "")") }
    }

    /// A copy (cp -a) of the bundle at `to`.
    func copy(to: String) throws -> Bundle {
        let o = Cmd.run(["/bin/cp", "-a", path, to], timeout: 60)
        guard o.ok else { throw TestFailure("cp -a: \(o)") }
        return Bundle(path: to)
    }

    /// The integers in rootfs/tmp/count, one per line.
    var count: [Int] {
        (readFile(rootfs + "/tmp/count") ?? "").split(separator: "\n").compactMap { Int($0) }
    }
    var lastCount: Int { count.last ?? 0 }
}

/// The container's process: appends 1, 2, 3, ... to /tmp/count every 0.2 s, after `setup`.
func countingScript(setup: String = "") -> [String] {
    ["sh", "-c", setup + "i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; sleep 0.2; done"]
}

/// True when `values` is exactly first, first+1, ..., with at least one value.
func consecutive(_ values: some Collection<Int>, from first: Int) -> Bool {
    !values.isEmpty && values.enumerated().allSatisfy { $0.element == first + $0.offset }
}

/// The last `n` lines of a file, for failure messages.
func tail(_ path: String, _ n: Int = 15) -> String {
    let lines = (readFile(path) ?? "(no \(path))").split(separator: "\n", omittingEmptySubsequences: false)
    return lines.suffix(n).joined(separator: "\n")
}
