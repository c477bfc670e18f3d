import Foundation
import LinuxKernel
import Images
import ProcFS

/// CRIU's pre-dump with memory tracking: the pages of every process (those written since
/// the parent pre-dump when there is one) into pagemap and pages images, and write
/// tracking started or carried on, so the next dump saves only what changes meanwhile.
/// The tree is frozen only to choose the pages and protect them again; they are copied
/// once it runs, and the tracking passes to a holder process (TrackingHolder). On failure, or if this process is killed, the
/// userfaultfds close with it: nothing stays protected, the next dump is a full one.
public enum PreDumper {
    public static func preDump(pid: Int32, options: DumpOptions, log: Log) throws -> DumpStatsEntry {
        try Dumper.checkTarget(pid)
        let images = ImageDirectory(path: options.imagesDir)
        try Dumper.prepare(images)
        let incremental = try IncrementalDump(images: images, parentPath: options.parentImages, root: pid,
                                              trackMemory: true, keepTracking: true, log: log)
        var stats = DumpStatsEntry()
        // A page server is connected before the freeze: an unreachable one touches nothing.
        let memory = MemoryDump(transfer: try options.pageTransfer(images: images),
                                files: FileTableDump(inet: InetSocketDump(allowEstablished: false, log: log)))
        let freezeStart = DispatchTime.now()
        let tree = try FrozenTree.freeze(root: pid, freezer: options.freezer)
        stats.freezingTime = micros(since: freezeStart)
        let frozenStart = DispatchTime.now()
        do {
            memory.planned = []
            for p in tree.processes where !p.isZombie {
                let pages = try incremental.pages(of: p, described: nil)
                _ = try memory.dump(pid: p.pid, name: p.vpid, areas: pages.areas, selection: pages.selection)
            }
            try FaultPoint.preDumpTracked.check()
        } catch {
            log.error("\(error)")
            tree.release()
            log.info("released every task; the tree keeps running, untracked")
            throw error
        }
        tree.release()
        stats.frozenTime = micros(since: frozenStart)
        let copyStart = DispatchTime.now()
        do {
            try memory.sendPlanned()
            try memory.transfer.finish()
            stats.pagesScanned = memory.stats.pagesScanned
            stats.pagesWritten = memory.stats.pagesWritten
            stats.pagesSkippedParent = memory.stats.pagesInParent
            stats.memdumpTime = micros(since: copyStart)
            stats.memwriteTime = 0
            stats.pagesLazy = 0
            var s = StatsEntry()
            s.dump = stats
            try images.write(.statsDump, [s])
            try images.syncToDisk()
        } catch {
            log.error("\(error)")
            log.info("the tree runs on, untracked")
            throw error
        }
        try TrackingHolder.hand(incremental.next!, root: pid)
        log.info("pre-dump: \(stats.pagesWritten) pages written, \(stats.pagesSkippedParent) in the parent; frozen \(stats.frozenTime) us")
        return stats
    }
}
