// runc's iterative checkpoint through CRIU's RPC (issue 14, item 1): `checkpoint --pre-dump`
// (PRE_DUMP with track_mem, after runc asked FEATURE_CHECK for mem_track) leaves the
// container running, and `checkpoint --parent-path ../P1` dumps on it; the restored
// container counts on from where it stopped.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct PreDumpContainerTests {
    @Test func preDumpThenCheckpointOnItThenRestore() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Env.binary), "no engine binary at \(Env.binary)")
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = scratch.newID()
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: countingScript())
        try bundle.run(id: id)
        let c = Runc(id: id)
        try #require(waitFor(10) { bundle.count.count >= 3 }, "the container does not count: \(tail(bundle.path + "/run.err"))")

        let p1 = scratch.sub("p1"), w1 = scratch.sub("work-p1")
        let pre = c.checkpoint(images: p1, work: w1, extra: ["--pre-dump"])
        try #require(pre.ok, "checkpoint --pre-dump: \(pre)\n\(tail(w1 + "/dump.log"))")
        #expect(c.status == "running")
        let afterPre = bundle.lastCount
        #expect(waitFor(10) { bundle.lastCount >= afterPre + 2 }, "the container stopped counting after the pre-dump")
        #expect(FileManager.default.fileExists(atPath: p1 + "/pagemap-1.img"), "no pagemap of the container's init in \(p1)")

        let images = scratch.sub("images"), work = scratch.sub("work")
        let dump = c.checkpoint(images: images, work: work, extra: ["--parent-path", "../p1"])
        try #require(dump.ok, "checkpoint --parent-path: \(dump)\n\(tail(work + "/dump.log"))")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: images + "/parent")) == "../p1")
        let last = bundle.lastCount

        let restore = c.restore(bundle: bundle.path, images: images, work: scratch.sub("work-restore"))
        try #require(restore.ok, "restore: \(restore)\n\(tail(scratch.sub("work-restore") + "/restore.log"))")
        #expect(c.status == "running")
        #expect(waitFor(10) { bundle.lastCount >= last + 3 }, "no counting after restore")
        #expect(consecutive(bundle.count, from: 1), "count around \(last): \(bundle.count.suffix(12))")
        let (kill, delete, stopped) = c.killAndDelete()
        #expect(kill.ok && stopped && delete.ok, "teardown: \(kill)\n\(delete)")
    }
}
