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
                                              trackMemory: true, protect: true, log: log)
        let next = TrackedTree(images: IncrementalDump.canonical(images.path))
        var stats = DumpStatsEntry()
        let memory = MemoryDump(transfer: LocalPageTransfer(images: images),
                                files: FileTableDump(inet: InetSocketDump(allowEstablished: false, log: log)))
        let freezeStart = DispatchTime.now()
        let tree = try FrozenTree.freeze(root: pid, freezer: options.freezer)
        stats.freezingTime = micros(since: freezeStart)
        let frozenStart = DispatchTime.now()
        do {
            memory.planned = []
            for p in tree.processes where !p.isZombie {
                let process = try track(p, incremental: incremental)
                next.add(p.pid, process.tracked)
                _ = try memory.dump(pid: p.pid, name: p.vpid, areas: process.areas, selection: process.selection)
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
            stats.pagesScanned = memory.stats.pagesScanned
            stats.pagesWritten = memory.stats.pagesWritten
            stats.pagesSkippedParent = memory.stats.pagesInParent
            stats.memdumpTime = micros(since: copyStart)
            stats.memwriteTime = 0
            stats.pagesLazy = 0
            var s = StatsEntry()
            s.dump = stats
            try images.write(.statsDump, [s])
        } catch {
            log.error("\(error)")
            log.info("the tree runs on, untracked")
            throw error
        }
        try TrackingHolder.hand(next, root: pid)
        log.info("pre-dump: \(stats.pagesWritten) pages written, \(stats.pagesSkippedParent) in the parent; frozen \(stats.frozenTime) us")
        return stats
    }

    /// Tracking for `p`: its userfaultfd (the one carried from the last round, or a new
    /// one made inside it), every private area registered, and the pages to dump.
    private static func track(_ p: FrozenTree.Process, incremental: IncrementalDump) throws -> (tracked: TrackedTree.Process, areas: [MemoryArea], selection: PageSelection) {
        let startTime = p.stat.startTime
        var fd: Int32
        if let carried = incremental.tracking?.process(p.pid, startTime: startTime) {
            fd = dup(carried.fd)
            if fd < 0 { throw CheckpointError.errno("dup the userfaultfd of pid \(p.pid)") }
        } else {
            let areas = try ProcMaps.parse(maps: readProcFile("/proc/\(p.pid)/maps"))
            let probe = try ProcessProbe(pid: p.pid, threads: p.threads, areas: areas)
            do {
                fd = try WriteTracking.create(in: probe, hostPid: p.pid)
                try probe.finish(mainThread: p.pid)
            } catch {
                probe.abandon(mainThread: p.pid)
                throw CheckpointError(.unsupported, "pid \(p.pid): cannot track its memory writes with userfaultfd (\(error)); this kernel has no soft-dirty to fall back on")
            }
        }
        do {
            let areas = try ProcMaps.read(pid: p.pid)
            let ranges = WriteTracking.register(fd, areas: areas)
            let selection = try incremental.selection(pid: p.pid, vpid: p.vpid, startTime: startTime, areas: areas)
            return (TrackedTree.Process(startTime: startTime, fd: fd, ranges: ranges), areas, selection)
        } catch {
            close(fd)
            throw error
        }
    }
}
