// Running runc, crun and the hook binary for the registry tests (through SystemTestSupport's
// Cmd), busybox bundles, and container ids that the test's scratch area deletes (only those)
// when done.

import Foundation
import OCISpec
import SystemTestSupport
import Testing

enum Env {
    static let packageRoot = Project.root
    static var binary: String { Project.binary }
    static let runc = "/usr/sbin/runc"
    static let crun = "/usr/bin/crun"
    static let busybox = "/bin/busybox"
    static func usable(_ runtime: String) -> Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: runtime)
            && FileManager.default.isExecutableFile(atPath: busybox)
    }
}

extension Scratch {
    /// A fresh container id, deleted (only it) when the scratch area is torn down.
    func newID(runtime: String, root: String? = nil) -> String {
        let id = "spec-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        onTearDown { Cmd.sh("\(runtime) \(root.map { "--root \($0) " } ?? "")delete -f \(id)", timeout: 20) }
        return id
    }

    /// A bundle whose rootfs is busybox with its applets, running `args`; the config
    /// starts from `runtime spec` and goes through `edit`.
    func bundle(_ name: String, runtime: String, args: [String], edit: (inout Spec) -> Void = { _ in }) throws -> String {
        let bundle = path + "/" + name
        let fm = FileManager.default
        for dir in ["bin", "tmp", "proc", "sys", "dev", "etc"] {
            try fm.createDirectory(atPath: bundle + "/rootfs/" + dir, withIntermediateDirectories: true)
        }
        try fm.copyItem(atPath: Env.busybox, toPath: bundle + "/rootfs/bin/busybox")
        for applet in ["sh", "sleep", "cat", "echo"] {
            try fm.createSymbolicLink(atPath: bundle + "/rootfs/bin/" + applet, withDestinationPath: "busybox")
        }
        let made = Cmd.sh("cd \(bundle) && \(runtime) spec")
        guard made.ok else { throw TestFailure("\(runtime) spec: \(made)") }
        var spec = try Spec.read(path: bundle + "/config.json")
        spec.process?.terminal = false
        spec.process?.args = args
        spec.root = Root(path: "rootfs", readonly: false)
        edit(&spec)
        try OCIJSON.encode(spec).write(to: URL(fileURLWithPath: bundle + "/config.json"))
        return bundle
    }
}

/// `crun run -d` in a private mount namespace without the cgroup2 mount: crun 1.8 refuses
/// this machine's hybrid hierarchy otherwise.
func crunRun(bundle: String, id: String) -> Output {
    Cmd.sh("cd \(bundle) && unshare -m sh -c 'umount /sys/fs/cgroup/unified && exec \(Env.crun) run -d --bundle \(bundle) \(id)'")
}

func runcRun(root: String, bundle: String, id: String) -> Output {
    Cmd.sh("\(Env.runc) --root \(root) run -d --bundle \(bundle) \(id)")
}

/// `runtime state ID` as JSON (nil when the runtime does not know the id).
func runtimeState(_ runtime: String, root: String? = nil, id: String) -> [String: Any]? {
    let o = Cmd.sh("\(runtime) \(root.map { "--root \($0) " } ?? "")state \(id)")
    guard o.ok else { return nil }
    return try? JSONSerialization.jsonObject(with: Data(o.out.utf8)) as? [String: Any]
}
