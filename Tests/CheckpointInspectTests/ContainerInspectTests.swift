// `inspect --mounts --ps-tree` on a runc container checkpointed by `runc --criu ocicheckpoint
// checkpoint`, laid out as podman's archive (spec.dump = the bundle's config.json).

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.hasRunc, "needs root, cc, runc and busybox"))
struct ContainerInspectTests {
    /// A busybox bundle whose process is `sh -c SCRIPT inspect-ctr marker-arg`.
    private func bundle(at path: String, script: String) throws -> [String: Any] {
        let fm = FileManager.default
        let rootfs = path + "/rootfs"
        for d in ["bin", "tmp", "proc", "sys", "dev", "etc"] { try fm.createDirectory(atPath: rootfs + "/" + d, withIntermediateDirectories: true) }
        try fm.copyItem(atPath: Env.busybox, toPath: rootfs + "/bin/busybox")
        for applet in ["sh", "sleep"] { try fm.createSymbolicLink(atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox") }
        let spec = Cmd.run([Env.runc, "spec", "--bundle", path])
        guard spec.ok else { throw TestFailure("runc spec: \(spec)") }
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path + "/config.json"))) as! [String: Any]
        var process = config["process"] as! [String: Any]
        process["terminal"] = false
        process["args"] = ["sh", "-c", script, "inspect-ctr", "marker-arg"]
        config["process"] = process
        config["root"] = ["path": "rootfs", "readonly": false]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path + "/config.json"))
        return config
    }

    @Test func mountsAndProcessesOfARuncContainer() throws {
        let scratch = try Scratch()
        let id = "inspect-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        defer {
            Cmd.run([Env.runc, "kill", id, "KILL"], timeout: 10)
            waitFor(5) { !Cmd.run([Env.runc, "state", id], timeout: 10).out.contains("\"running\"") }
            Cmd.run([Env.runc, "delete", "-f", id], timeout: 20)
            scratch.tearDown()
        }
        let bundlePath = scratch.sub("bundle")
        var config = try bundle(at: bundlePath, script: "sleep 1000 & echo started > /tmp/ready; wait")
        let run = Cmd.sh("\(Env.runc) run -d --bundle \(bundlePath) \(id) </dev/null >\(bundlePath)/run.out 2>\(bundlePath)/run.err", timeout: 30)
        try #require(run.ok, "runc run: \(run)\n\(readFile(bundlePath + "/run.err") ?? "")")
        try #require(waitFor(10) { readFile(bundlePath + "/rootfs/tmp/ready") != nil }, "the container did not start")

        let dir = scratch.sub("ckpt"), work = scratch.sub("work")
        let dump = Cmd.run([Env.runc, "--criu", Env.binary, "checkpoint", "--leave-running",
                            "--image-path", dir + "/checkpoint", "--work-path", work, id], timeout: 60)
        try #require(dump.ok, "runc checkpoint: \(dump)\n\(readFile(work + "/dump.log") ?? "")")
        config["annotations"] = ["io.container.manager": "libpod"]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/spec.dump"))
        let meta: [String: Any] = ["id": id, "name": id, "rootfsImageName": "localhost/busybox:latest", "runtime": "runc"]
        try JSONSerialization.data(withJSONObject: meta).write(to: URL(fileURLWithPath: dir + "/config.dump"))

        let json = Cmd.cli(["inspect", dir, "--mounts", "--ps-tree", "--format", "json"])
        try #require(json.ok, "\(json)")
        let doc = try #require((try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])?.first)
        let mounts = try #require(doc["mounts"] as? [[String: String]], "\(json.out)")
        // The dumped mount tree, not spec.dump's list: runc's default mounts as the kernel had them.
        #expect(mounts.allSatisfy { $0["origin"] == "mountpoints" }, "\(mounts)")
        func has(_ destination: String, _ type: String) -> Bool {
            mounts.contains { $0["destination"] == destination && $0["type"] == type }
        }
        #expect(has("/proc", "proc") && has("/dev", "tmpfs") && has("/dev/pts", "devpts") && has("/dev/mqueue", "mqueue"),
                "\(mounts.map { "\($0["destination"]!) \($0["type"]!) \($0["source"]!)" })")

        // The container's own pid namespace: sh is pid 1, its sleep a child.
        let tree = try #require(doc["process_tree"] as? [String: Any])
        #expect((tree["pid"] as? NSNumber)?.intValue == 1)
        #expect(tree["arguments"] as? [String] == ["sh", "-c", "sleep 1000 & echo started > /tmp/ready; wait", "inspect-ctr", "marker-arg"])
        let children = tree["children"] as? [[String: Any]] ?? []
        #expect(children.map { $0["arguments"] as? [String] ?? [] } == [["sleep", "1000"]], "\(children)")

        let text = Cmd.cli(["inspect", dir, "--mounts"])
        #expect(text.ok && text.out.contains("Destination: /proc\n") && text.out.contains("Type: devpts"), "\(text)")
    }
}
