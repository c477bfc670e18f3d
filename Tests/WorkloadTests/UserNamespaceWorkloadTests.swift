// Trees in a user namespace of their own (issue 11) through a real dump and restore.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let userns = Workload(name: "userns")
    static let usernsCreds = Workload(name: "userns-creds")
    static let usernsPidns = Workload(name: "userns-pidns")
    static let usernsNested = Workload(name: "userns-refused", args: ["nested"])
    static let usernsTree = Workload(name: "userns-refused", args: ["tree"])
    static let usernsForeignNet = Workload(name: "userns-refused", args: ["foreign"])
    static let usernsMountNamespace = Workload(name: "userns-refused", args: ["mnt"])
    static let usernsCgroupBelowRoot = Workload(name: "userns-refused", args: ["cgroup"])
}

@Suite("user namespaces", .serialized)
struct UserNamespaceTests {
    @Test("a process in a user namespace mapping only uid/gid 0, setgroups denied, keeps its maps and groups", arguments: Mode.allCases)
    func deniedSetgroups(_ mode: Mode) async throws { try await checkpointRestore(.userns, mode) }

    @Test("maps of several extents written from outside, uids, gids, groups, capabilities, securebits, a file and a pipe opened inside",
          arguments: Mode.allCases)
    func credentials(_ mode: Mode) async throws { try await checkpointRestore(.usernsCreds, mode) }

    @Test("rootless podman's shape: init of pid, net, uts, ipc and cgroup namespaces made inside a user namespace, with a two-threaded worker; each restored namespace is owned by the restored user namespace",
          arguments: Mode.allCases)
    func namespacesInside(_ mode: Mode) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Paths.binary), "no CLI at \(Paths.binary)")
        let run = try WorkloadRun(.usernsPidns)
        defer { run.cleanup() }
        try run.start()
        // DIR/ready names the tree's init as the launcher (our child, outside) sees it.
        var initPid: pid_t?
        for _ in 0..<1000 where initPid == nil {
            initPid = Proc.read(run.dir + "/ready").flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if initPid == nil { await sleep(0.02) }
        }
        let root = try #require(initPid, "no ready file\n\(run.diagnostics())")
        var args = ["dump", "-t", "\(root)", "-D", run.images, "-o", run.dumpLog, "-v4"]
        if mode == .leaveRunning { args.append("--leave-running") }
        let d = await CLI.run(args, outputDir: run.base)
        try #require(d.status == 0, "dump failed\n\(d)\n\(run.diagnostics())")
        if mode == .leaveRunning { Proc.sigkill(root) }
        let left = await Proc.waitVanished([root])
        try #require(left.isEmpty, "init \(root) still exists")
        let r = await run.restore()
        try #require(r.status == 0, "restore failed\n\(run.diagnostics())")
        let restored = try #require(run.restoredPid)
        run.go()
        // Our child (the launcher) ended with the original init: wait for the file itself.
        var result: String?
        for _ in 0..<1000 where result == nil {
            result = Proc.read(run.dir + "/result")
            if result == nil { await sleep(0.02) }
        }
        #expect(result == "PASS\n", "result \(result ?? "missing")\n\(run.diagnostics())")
        _ = await Proc.waitVanished([restored], timeout: 10)
    }

    @Test("CRIU 4.2's dump of a process in a user namespace (several extents, credentials inside) restores with ours")
    func criuDumpRestoresHere() async throws { try await crossRestore(.usernsCreds, .criuToOurs) }

    @Test("a user namespace nested two levels below the dumper's refuses the dump in one line; the workload keeps running")
    func nestedRefused() async throws { try await expectRefusedDump(.usernsNested, "nested more than one level") }

    @Test("a user namespace without a pid namespace of its own holding two processes refuses the dump in one line")
    func treeWithoutPidNamespaceRefused() async throws { try await expectRefusedDump(.usernsTree, "without a pid namespace of their own") }

    @Test("a net namespace made before the user namespace (owned by the dumper's) refuses the dump in one line")
    func foreignOwnerRefused() async throws { try await expectRefusedDump(.usernsForeignNet, "owned by another user namespace") }

    @Test("a mount namespace inside the user namespace that copies the host's mount tree refuses the dump in one line")
    func mountNamespaceRefused() async throws { try await expectRefusedDump(.usernsMountNamespace, "copies the host's mount tree") }

    @Test("a cgroup namespace made inside whose root is above the root task's cgroup refuses the dump in one line",
          .enabled(if: FileManager.default.fileExists(atPath: "/sys/fs/cgroup/pids/cgroup.procs"), "needs the cgroup v1 pids hierarchy"))
    func cgroupBelowRootRefused() async throws { try await expectRefusedDump(.usernsCgroupBelowRoot, "below the root of its cgroup namespace") }
}
