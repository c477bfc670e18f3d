// The fd-kind workloads (Tests/WorkloadTests/Workloads) as the process of a runc container:
// checkpointed and restored through `runc --criu ocicheckpoint`, so pidfds are reopened in
// a new pid namespace and watched paths are found inside the container's own root.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ContainerTests {
    @Suite("fd kinds in a container")
    struct FdKinds {
        // fanotify is left out: runc's default capabilities lack CAP_SYS_ADMIN.
        @Test("workload state survives runc checkpoint and restore", arguments: ["pidfd", "inotify", "epoll", "memfd", "timerfd", "signalfd"])
        func workload(_ name: String) throws {
            let scratch = try Scratch()
            defer { scratch.tearDown() }
            let id = scratch.newID()
            let bundle = try Bundle.make(at: scratch.sub("bundle"), args: ["/bin/workload", "/tmp/w"])
            try FileManager.default.createDirectory(atPath: bundle.rootfs + "/tmp/w", withIntermediateDirectories: true)
            let source = Env.packageRoot + "/Tests/WorkloadTests/Workloads/\(name).c"
            let cc = Cmd.run([Env.cc, "-static", "-O2", "-pthread", "-o", bundle.rootfs + "/bin/workload", source], timeout: 120)
            try #require(cc.ok, "compiling \(source): \(cc)")
            try bundle.run(id: id)
            let dir = bundle.rootfs + "/tmp/w"
            try #require(waitFor(10) { FileManager.default.fileExists(atPath: dir + "/ready") },
                         "\(name) did not get ready: \(tail(bundle.path + "/run.err"))")
            let c = Runc(id: id)
            let images = scratch.sub("images"), work = scratch.sub("work")
            let dump = c.checkpoint(images: images, work: work)
            try #require(dump.ok, "checkpoint: \(dump)\n\(tail(work + "/dump.log"))")
            let work1 = scratch.sub("work-restore")
            let restore = c.restore(bundle: bundle.path, images: images, work: work1)
            try #require(restore.ok, "restore: \(restore)\n\(tail(work1 + "/restore.log"))")
            _ = FileManager.default.createFile(atPath: dir + "/go", contents: Data("go\n".utf8))
            #expect(waitFor(30) { FileManager.default.fileExists(atPath: dir + "/result") }, "\(name): no result after restore")
            #expect(readFile(dir + "/result") == "PASS\n", "\(name) after restore: \(readFile(dir + "/result") ?? "-")\n\(tail(bundle.path + "/run.err"))")
        }
    }
}
