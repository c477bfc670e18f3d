// Real containers: crun running our hook (from hooks/*.json) at createRuntime and
// poststop, a runc container found through its state directory, and a container whose
// hook gets garbage and still starts.

import ContainerRegistry
import Foundation
import OCISpec
import SystemTestSupport
import Testing

/// The inode a /proc/PID/ns/* link names ("net:[4026532183]").
func namespaceID(_ path: String) -> String? { try? FileManager.default.destinationOfSymbolicLink(atPath: path) }

@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: Env.binary), "needs the built binary"))
struct RuntimeTests {
    /// hooks/*.json, with the hook pointed at the built binary and a test registry.
    func shippedHooks(registry: String) throws -> Hooks {
        var hooks = Hooks()
        for name in ["ocicheckpoint-createruntime.json", "ocicheckpoint-poststop.json"] {
            var file = try OCIHooksFile.read(path: Env.packageRoot + "/hooks/" + name)
            #expect(file.hook.path == "/usr/local/bin/ocicheckpoint" && file.when.always == true)
            file.hook.path = Env.binary
            file.hook.args = (file.hook.args ?? []) + ["--registry", registry]
            hooks = file.applied(to: hooks)
        }
        return hooks
    }

    @Test(.enabled(if: Env.usable(Env.crun), "needs root, crun and busybox"))
    func crunContainerIsRecordedByTheHookAndForgottenAtDelete() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let registry = ContainerRegistry(directory: scratch.path + "/registry")
        let hooks = try shippedHooks(registry: registry.directory)
        #expect(hooks.createRuntime?.count == 1 && hooks.poststop?.count == 1)
        let bundle = try scratch.bundle("crun", runtime: Env.crun, args: ["sleep", "1000"]) { spec in
            spec.hooks = hooks
            spec.annotations = ["org.example.spec": "registry"]
        }
        let id = scratch.newID(runtime: Env.crun)
        let run = crunRun(bundle: bundle, id: id)
        try #require(run.ok, "crun run: \(run)\nlog: \((try? String(contentsOfFile: registry.logPath, encoding: .utf8)) ?? "")")
        let pid = Int32(try #require(runtimeState(Env.crun, id: id)?["pid"] as? Int))

        let entry = try #require(try registry.entry(id: id),
                                 "no entry; log: \((try? String(contentsOfFile: registry.logPath, encoding: .utf8)) ?? "")")
        #expect(entry.pid == pid)
        #expect(entry.runtime == "crun")
        #expect(entry.bundle == bundle && entry.rootfs == bundle + "/rootfs")
        #expect(entry.cgroupPaths["freezer"] == "/sys/fs/cgroup/freezer/\(id)", "\(entry.cgroupPaths)")
        #expect(entry.cgroupPaths["pids"] == "/sys/fs/cgroup/pids/\(id)")
        #expect(entry.annotations["org.example.spec"] == "registry")
        for type in NamespaceType.allCases {
            #expect(entry.namespacePath(type) == "/proc/\(pid)/ns/\(type.procName)")
        }
        // The container has its own pid and net namespaces: the paths name them, not ours.
        #expect(namespaceID(entry.namespacePaths["network"]!) != namespaceID("/proc/self/ns/net"))
        #expect(namespaceID(entry.namespacePaths["pid"]!) != namespaceID("/proc/self/ns/pid"))

        // Only through the registry, then through crun's state directory.
        let viaRegistry = try ContainerLocator(runcRoot: scratch.path + "/none", crunRoot: scratch.path + "/none",
                                               registry: registry).find(id)
        #expect(viaRegistry == entry)
        let viaCrun = try ContainerLocator(registry: registry).find(id)
        #expect(viaCrun.source == .crun && viaCrun.pid == pid && viaCrun.status == .running)
        #expect(viaCrun.bundle == bundle && viaCrun.rootfs == entry.rootfs)
        #expect(viaCrun.cgroupPaths == entry.cgroupPaths && viaCrun.namespacePaths == entry.namespacePaths)
        #expect(viaCrun.annotations == entry.annotations)

        // `checkpoint` finds it through the registry alone and says why it cannot go on;
        // the container keeps running.
        let checkpoint = Cmd.sh("\(Env.binary) checkpoint --registry \(registry.directory) --crun-root \(scratch.path)/none --export \(scratch.path)/never.tar \(id)")
        #expect(!checkpoint.ok)
        #expect(checkpoint.err == "Error: container \(id): run by crun (found in the hook registry \(registry.directory), init pid \(pid)), which has no checkpoint support: checkpoint needs runc (runc --criu); the process tree alone can be dumped with `ocicheckpoint dump -t \(pid)`\n", "\(checkpoint)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/never.tar"))
        #expect(runtimeState(Env.crun, id: id)?["status"] as? String == "running")

        let delete = Cmd.sh("\(Env.crun) delete -f \(id)")
        #expect(delete.ok, "\(delete)")
        #expect(!FileManager.default.fileExists(atPath: registry.path(of: id)), "the poststop hook left the entry")
        let log = (try? String(contentsOfFile: registry.logPath, encoding: .utf8)) ?? ""
        #expect(log.contains("container \(id): recorded pid \(pid) (crun)") && log.contains("container \(id): removed"),
                "log: \(log)")
        #expect(throws: ContainerRegistryError(
            "container \(id): not found in \(scratch.path)/none, /run/crun or the hook registry \(registry.directory)")) {
            try ContainerLocator(runcRoot: scratch.path + "/none", registry: registry).find(id)
        }
    }

    @Test(.enabled(if: Env.usable(Env.runc), "needs root, runc and busybox"))
    func runcContainerIsFoundThroughItsStateDirectory() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let root = scratch.path + "/runc-root"
        let bundle = try scratch.bundle("runc", runtime: Env.runc, args: ["sleep", "1000"]) { spec in
            spec.annotations = ["org.example.spec": "runc"]
        }
        let id = scratch.newID(runtime: Env.runc, root: root)
        let run = runcRun(root: root, bundle: bundle, id: id)
        try #require(run.ok, "runc run: \(run)")
        let pid = Int32(try #require(runtimeState(Env.runc, root: root, id: id)?["pid"] as? Int))

        let locator = ContainerLocator(runcRoot: root, registry: ContainerRegistry(directory: scratch.path + "/registry"))
        let found = try locator.find(id)
        #expect(found.source == .runc && found.runtime == "runc")
        #expect(found.pid == pid && found.status == .running)
        #expect(found.bundle == bundle && found.rootfs == bundle + "/rootfs")
        #expect(found.cgroupPaths["freezer"] == "/sys/fs/cgroup/freezer/\(id)")
        #expect(found.freezerPath == "/sys/fs/cgroup/freezer/\(id)")
        #expect(found.namespacePath(.network) == "/proc/\(pid)/ns/net")
        #expect(found.annotations["org.example.spec"] == "runc")
        #expect(namespaceID(found.namespacePaths["network"]!) != namespaceID("/proc/self/ns/net"))

        let kill = Cmd.sh("\(Env.runc) --root \(root) kill \(id) KILL")
        #expect(kill.ok, "\(kill)")
        #expect(waitFor(5) { (try? locator.find(id).status) == .stopped })
        let delete = Cmd.sh("\(Env.runc) --root \(root) delete \(id)")
        #expect(delete.ok, "\(delete)")
        #expect(throws: ContainerRegistryError(
            "container \(id): not found in \(root), /run/crun or the hook registry \(scratch.path)/registry")) {
            try locator.find(id)
        }
    }

    /// The same hooks under runc: its createRuntime state says "creating".
    @Test(.enabled(if: Env.usable(Env.runc), "needs root, runc and busybox"))
    func runcContainerIsRecordedByTheHookAndForgottenAtDelete() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let root = scratch.path + "/runc-root", registry = ContainerRegistry(directory: scratch.path + "/registry")
        let hooks = try shippedHooks(registry: registry.directory)
        let bundle = try scratch.bundle("runc", runtime: Env.runc, args: ["sleep", "1000"]) { $0.hooks = hooks }
        let id = scratch.newID(runtime: Env.runc, root: root)
        let run = runcRun(root: root, bundle: bundle, id: id)
        try #require(run.ok, "runc run: \(run)")
        let pid = Int32(try #require(runtimeState(Env.runc, root: root, id: id)?["pid"] as? Int))
        let log = { (try? String(contentsOfFile: registry.logPath, encoding: .utf8)) ?? "" }

        let entry = try #require(try registry.entry(id: id), "no entry; log: \(log())")
        #expect(entry.pid == pid && entry.runtime == "runc" && entry.status == .creating)
        #expect(entry.bundle == bundle && entry.rootfs == bundle + "/rootfs")
        // The hook sees the cgroups runc made, as runc's own state lists them.
        let viaRunc = try ContainerLocator(runcRoot: root, registry: registry).find(id)
        #expect(viaRunc.source == .runc && viaRunc.pid == pid)
        for controller in ["freezer", "memory", "pids", "name=systemd"] {
            #expect(entry.cgroupPaths[controller] == viaRunc.cgroupPaths[controller], "\(controller)")
        }
        #expect(entry.namespacePath(.network) == viaRunc.namespacePath(.network))

        let delete = Cmd.sh("\(Env.runc) --root \(root) delete -f \(id)")
        #expect(delete.ok, "\(delete)")
        #expect(!FileManager.default.fileExists(atPath: registry.path(of: id)), "log: \(log())")
        #expect(log().contains("container \(id): recorded pid \(pid) (runc)") && log().contains("container \(id): removed"),
                "log: \(log())")
    }

    /// The runtime hands our hook garbage (through a shell in between): the hook logs why,
    /// exits 0, and the container runs.
    @Test(.enabled(if: Env.usable(Env.runc), "needs root, runc and busybox"))
    func containerStartsWhenItsHookGetsGarbage() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let root = scratch.path + "/runc-root", registry = ContainerRegistry(directory: scratch.path + "/registry")
        let bundle = try scratch.bundle("garbage", runtime: Env.runc, args: ["sleep", "1000"]) { spec in
            var hooks = Hooks()
            hooks.createRuntime = [Hook(path: "/bin/sh", args: ["sh", "-c", "echo garbage | \(Env.binary) hook --registry \(registry.directory)"],
                                        timeout: 10)]
            spec.hooks = hooks
        }
        let id = scratch.newID(runtime: Env.runc, root: root)
        let run = runcRun(root: root, bundle: bundle, id: id)
        #expect(run.ok, "runc run: \(run)")
        #expect(runtimeState(Env.runc, root: root, id: id)?["status"] as? String == "running")
        let log = (try? String(contentsOfFile: registry.logPath, encoding: .utf8)) ?? ""
        #expect(log.contains("stdin: not valid JSON"), "log: \(log)")
        #expect(try registry.entries().isEmpty)
    }
}
