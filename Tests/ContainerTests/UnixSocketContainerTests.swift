// UNIX sockets in a runc container (`runc --criu ocicheckpoint`): the container has its own
// network namespace (made empty again at restore, as runc asks) and its own root, so the
// restored sockets must be made in the new namespace and bound inside the new root. The
// workload is the unix-listen program of the workload tests, built static.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct UnixSocketContainerTests {
    @Test func namedSocketsSurviveCheckpointAndRestore() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Env.binary), "no engine binary at \(Env.binary)")
        let scratch = try Scratch()
        let id = "unix-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        let c = Runc(id: id)
        defer {
            if let s = c.status, s != "stopped" { Cmd.run([Env.runc, "kill", id, "KILL"], timeout: 10); waitFor(5) { c.status == "stopped" } }
            Cmd.run([Env.runc, "delete", "-f", id], timeout: 20)
            scratch.tearDown()
        }
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: ["/bin/unix-listen", "/w"])
        let w = bundle.rootfs + "/w"
        try FileManager.default.createDirectory(atPath: w, withIntermediateDirectories: true)
        let source = Env.packageRoot + "/Tests/WorkloadTests/Workloads/unix-listen.c"
        let cc = Cmd.run([Env.cc, "-static", "-O2", "-o", bundle.rootfs + "/bin/unix-listen", source], timeout: 120)
        try #require(cc.ok, "compiling unix-listen: \(cc)")
        try bundle.run(id: id)
        try #require(waitFor(10) { FileManager.default.fileExists(atPath: w + "/ready") },
                     "the container did not get ready: \(tail(w + "/out"))\(tail(bundle.path + "/run.err"))")

        let images = scratch.sub("images"), work = scratch.sub("work")
        let dump = c.checkpoint(images: images, work: work)
        try #require(dump.ok, "checkpoint: \(dump)\n\(tail(work + "/dump.log"))")
        #expect(c.status != "running")
        let restoreWork = scratch.sub("work-restore")
        let restore = c.restore(bundle: bundle.path, images: images, work: restoreWork)
        try #require(restore.ok, "restore: \(restore)\n\(tail(restoreWork + "/restore.log"))")
        #expect(c.status == "running")
        #expect(FileManager.default.fileExists(atPath: w + "/l.sock"), "the listener's path is not inside the container's root")
        _ = FileManager.default.createFile(atPath: w + "/go", contents: Data("go\n".utf8))
        #expect(waitFor(15) { FileManager.default.fileExists(atPath: w + "/result") })
        #expect(readFile(w + "/result") == "PASS\n", "result: \(readFile(w + "/result") ?? "none")\n\(tail(bundle.path + "/run.out"))")
    }
}
