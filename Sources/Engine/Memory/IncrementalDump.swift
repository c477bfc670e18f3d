import Foundation
import LinuxKernel
import Images
import ProcFS

/// What a dump on parent images (`--prev-images-dir`) builds on: the parent directory,
/// linked as `parent` in the images directory as CRIU links it, and the write tracking
/// that has run since that parent was taken. A present page goes to the parent only when
/// the tracking covers it and the parent chain holds it; everything else is dumped.
final class IncrementalDump {
    let parent: ImageDirectory?
    /// Tracking since `parent`, taken from the holder; nil when there is none for it.
    let tracking: TrackedTree?
    /// The tracking handed on to the next round (a pre-dump, a dump that leaves the tree
    /// running with --track-mem): written pages are protected again. Nil: tracking ends here.
    let next: TrackedTree?
    var protect: Bool { next != nil }
    /// What the parent chain holds of each process (by its pid in the images), read before
    /// the freeze: the parent's pagemaps are not the tree's, nothing changes them meanwhile.
    private var parentHolds: [Int32: AddressRanges] = [:]

    init(images: ImageDirectory, parentPath: String?, root: Int32, trackMemory: Bool, keepTracking: Bool, log: Log) throws {
        next = keepTracking ? TrackedTree(images: Self.canonical(images.path)) : nil
        let taken = trackMemory ? TrackingHolder.take(root: root, log: log) : nil
        guard let parentPath else { parent = nil; tracking = nil; return }
        let resolved = parentPath.hasPrefix("/") ? parentPath : (images.path as NSString).appendingPathComponent(parentPath)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDir), isDir.boolValue else {
            throw CheckpointError(.invalidArgument, "parent images \(parentPath) (\(resolved)): not a directory")
        }
        parent = try images.linkParent(parentPath)
        if let taken, taken.images == Self.canonical(resolved) {
            tracking = taken
        } else {
            if taken != nil { log.info("write tracking ran since \(taken!.images), not since \(resolved): pages are dumped in full") }
            tracking = nil
        }
        if let parent, tracking != nil { parentHolds = try Self.held(by: parent) }
    }

    static func canonical(_ path: String) -> String {
        guard let r = realpath(path, nil) else { return path }
        defer { free(r) }
        return String(cString: r)
    }

    /// Which present pages of `pid` (`vpid` in the images) are dumped: with tracking since
    /// the parent, those written since it, in areas still registered as when it was taken
    /// (within the ranges registered then, and still write-protect tracked when the page
    /// scan looks: a new, moved or remapped area is not), and those the parent does not hold.
    func selection(pid: Int32, vpid: Int32, startTime: UInt64) throws -> PageSelection {
        let mine = tracking?.process(pid, startTime: startTime)
        let usable = mine != nil && parentHolds[vpid] != nil
        // A pre-dump scans even with nothing to build on: the scan protects what it tracks next.
        guard usable || protect else { return .all }
        let written = try WriteTracking.written(pid: pid, protect: protect)
        guard usable, let mine, let held = parentHolds[vpid] else { return .all }
        return .sinceParent(written: written, registered: AddressRanges(mine.ranges), parentHolds: held)
    }

    /// The ranges each pagemap of `parent` holds (its entries; in-parent ones stand for the chain's).
    private static func held(by parent: ImageDirectory) throws -> [Int32: AddressRanges] {
        var out: [Int32: AddressRanges] = [:]
        for name in parent.list(.pagemap) {
            guard let id = name.id else { continue }
            var r = try parent.reader(name)
            _ = try r.one(PagemapHead.self)
            out[Int32(id)] = AddressRanges(try r.all(PagemapEntry.self).map { ($0.vaddr, $0.vaddr + $0.nrPages * MemoryDump.pageSize) })
        }
        return out
    }

    /// The areas of `p` and its pages to dump; when tracking goes on, with its userfaultfd
    /// (the one carried from the last round, or a new one made inside it) and every
    /// private area registered for the next round. A dump that ends the tracking chooses
    /// its pages from maps while smaps (`described`, started after the process's probe:
    /// the probe's mmap would wait for its walk) is read on a thread, or from smaps itself
    /// without it; a round that registers areas reads smaps after registering them.
    func pages(of p: FrozenTree.Process, described: BackgroundWork<[MemoryArea]>?) throws -> (areas: [MemoryArea], selection: PageSelection) {
        guard let next else {
            // Kernels whose page scan the dump cannot use say which areas are tracked in smaps only.
            let areas = if let described, MemoryDump.scanSupported {
                try ProcMaps.parse(maps: readProcFile("/proc/\(p.pid)/maps"))
            } else {
                try described?.wait() ?? ProcMaps.read(pid: p.pid)
            }
            return (areas, try selection(pid: p.pid, vpid: p.vpid, startTime: p.stat.startTime))
        }
        let startTime = p.stat.startTime
        var fd: Int32
        if let carried = tracking?.process(p.pid, startTime: startTime) {
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
            let chosen = try selection(pid: p.pid, vpid: p.vpid, startTime: startTime)
            next.add(p.pid, TrackedTree.Process(startTime: startTime, fd: fd, ranges: ranges))
            return (areas, chosen)
        } catch {
            close(fd)
            throw error
        }
    }
}
