// The helper tree (Helpers/inspect-tree.c) started, dumped with `ocicheckpoint dump
// --leave-running` into DIR/checkpoint, and laid out as a podman checkpoint archive.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

final class DumpedTree {
    static let containerID = "inspect0123456789abcdef"
    static let containerName = "inspect-tree-ctr"
    static let image = "localhost/inspect-busybox:latest"

    let scratch: Scratch
    /// The checkpoint laid out as an archive's members.
    var dir: String { scratch.sub("ckpt") }
    var images: String { dir + "/checkpoint" }
    /// The helper's working directory: its marker file, ready file and output.
    var work: String { scratch.sub("work") }
    var marker: String { work + "/marker.txt" }
    private(set) var root: pid_t = 0
    private(set) var child: pid_t = 0
    private var reaped = true
    let helper: String

    private static let compileLock = NSLock()
    nonisolated(unsafe) private static var compiled: String?

    /// The helper binary, compiled once per test run.
    static func helperBinary() throws -> String {
        compileLock.lock()
        defer { compileLock.unlock() }
        if let compiled, FileManager.default.isExecutableFile(atPath: compiled) { return compiled }
        let dir = "/tmp/inspect-helper-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let out = dir + "/inspect-tree"
        let cc = Cmd.run(["/usr/bin/cc", "-O2", "-o", out, Env.helperSource], timeout: 120)
        guard cc.ok else { throw TestFailure("cc: \(cc)") }
        compiled = out
        atexit { _ = try? FileManager.default.removeItem(atPath: "/tmp/inspect-helper-\(getpid())") }
        return out
    }

    init() throws {
        scratch = try Scratch()
        helper = try Self.helperBinary()
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    /// Starts the tree and waits until root and child are set up.
    func start() throws {
        root = try Spawn.start([helper, work], stdout: .file(work + "/out", append: true))
        reaped = false
        guard waitFor(10, { readFile(work + "/ready") != nil }) else {
            throw TestFailure("helper not ready: \(readFile(work + "/out") ?? "")")
        }
        let pids = (readFile(work + "/ready") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { pid_t($0) }
        guard pids.count == 2, pids[0] == root else { throw TestFailure("ready lists \(pids), spawned \(root)") }
        child = pids[1]
    }

    /// `ocicheckpoint dump -t ROOT -D DIR/checkpoint --leave-running`.
    func dump() throws {
        let d = Cmd.cli(["dump", "-t", "\(root)", "-D", images, "--leave-running", "-o", scratch.sub("dump.log"), "-v4"])
        guard d.ok else { throw TestFailure("dump: \(d)\n\(readFile(scratch.sub("dump.log")) ?? "")") }
    }

    /// config.dump and spec.dump as podman writes them (the fields inspect reads), and a
    /// rootfs-diff.tar made by tar.
    func writeArchiveMembers() throws {
        let config: [String: Any] = [
            "id": Self.containerID, "name": Self.containerName, "rootfsImageName": Self.image,
            "runtime": "runc", "createdTime": "2026-11-22T10:00:00.123456789Z",
            "checkpointedTime": "2026-11-22T10:05:00Z",
        ]
        let spec: [String: Any] = [
            "ociVersion": "1.0.2", "annotations": ["io.container.manager": "libpod"],
            "mounts": [["destination": "/proc", "type": "proc", "source": "proc"]],
        ]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/config.dump"))
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: dir + "/spec.dump"))
        let diff = scratch.sub("diff")
        try FileManager.default.createDirectory(atPath: diff + "/tmp", withIntermediateDirectories: true)
        try Data(repeating: 0x41, count: 3000).write(to: URL(fileURLWithPath: diff + "/tmp/count"))
        let tar = Cmd.run(["/bin/tar", "-C", diff, "-cf", dir + "/rootfs-diff.tar", "tmp"])
        guard tar.ok else { throw TestFailure("tar: \(tar)") }
    }

    /// start + dump + archive members: the usual fixture.
    static func make() throws -> DumpedTree {
        let t = try DumpedTree()
        do {
            try t.start()
            try t.dump()
            try t.writeArchiveMembers()
        } catch {
            t.tearDown()
            throw error
        }
        return t
    }

    func tearDown() {
        if child > 1 { kill(child, SIGKILL) }
        if !reaped && root > 1 {
            kill(root, SIGKILL)
            _ = Spawn.wait(root, timeout: 10)
            reaped = true
        }
        scratch.tearDown()
    }
}
