import Foundation
import LinuxKernel
import Images

/// Everything a restore needs, read and checked before the first task is created, so a
/// damaged image fails the restore while nothing exists yet.
struct CheckpointImages {
    struct Process {
        let entry: PstreeEntry
        var pid: Int32 { Int32(entry.pid) }
        let cores: [Int32: CoreEntry]
        var main: CoreEntry { cores[pid]! }
        let isZombie: Bool
        var mm = MmEntry()
        var pagemap: [PagemapEntry] = []
        /// Runs flagged PE_LAZY alone (dump --lazy-pages): their pages are on the dump's
        /// lazy page server, not in the pages image.
        var lazyPagemap: [PagemapEntry] = []
        var pagesID: UInt32 = 0
        var fds: [FdinfoEntry] = []
        var filesID: UInt32 = 0
        /// The fs (cwd, root, umask) id from ids-PID.img, where it has one.
        var fsID: UInt32?
        var fs = FsEntry()
        var sigactions: [SaEntry] = []

        /// The blocked signals of thread `tid`: its thread core's, or for the main thread
        /// the task core's when the thread core has none (CRIU keeps the leader's there).
        func blockedSignals(_ tid: Int32) -> UInt64 {
            let core = cores[tid]!
            if core.threadCore.hasBlkSigset || !core.hasTc { return core.threadCore.blkSigset }
            return core.tc.blkSigset
        }
    }

    let dir: ImageDirectory
    let inventory: InventoryEntry
    var processes: [Process] = []
    var files: [UInt32: FileEntry] = [:]
    var pipeData: [UInt32: QueuedPipe] = [:]
    var fifoData: [UInt32: QueuedPipe] = [:]
    var skQueues: [UInt32: [UnixSocketRestore.Packet]] = [:]   // queued packets by receiving socket id
    var ghosts: [UInt32: GhostFile] = [:]   // by the id of the file they stand for
    var linkRemaps: [UInt32: UInt32] = [:]   // deleted file id -> the id of its link (--link-remap)
    /// Shared anonymous memory by shmid: data runs (object offset, pages image offset, length).
    var shmem: [UInt64: (pagesID: UInt32, runs: [PagemapEntry])] = [:]
    var seccompFilters: [SeccompFilter] = []
    var fileLocks: [FileLockEntry] = []
    var mqueues: [UInt32: (entry: MqueueEntry, messages: [Data])] = [:]
    var memfds: [UInt64: MemfdInodeEntry] = [:]   // by inode id
    var bpfMaps: [UInt32: BpfMapEntries] = [:]   // entries by dumped map id
    /// Established TCP connections' repair state and queues, by socket inode.
    var tcpStreams: [UInt32: TcpRepairState] = [:]

    init(dir: ImageDirectory) throws {
        self.dir = dir
        guard dir.exists(.inventory) else {
            throw CheckpointError(.image, "image directory \(dir.path): no \(ImageName.inventory) (not a complete dump)")
        }
        inventory = try Self.readSole(dir, .inventory, as: InventoryEntry.self)
        guard inventory.imgVersion == 2 else {
            throw CheckpointError(.image, "image \(dir.file(.inventory)): unsupported image version \(inventory.imgVersion)")
        }
        var seen = Set<UInt32>(), parents = Set<UInt32>()
        let entries = try dir.read(.pstree, as: PstreeEntry.self)
        for entry in entries {
            // A zombie's threads are [0] in CRIU's images: 0 is no pid, and may appear in each.
            for id in Set([entry.pid] + entry.threads.filter { $0 != 0 }) where !seen.insert(id).inserted {
                throw CheckpointError(.image, "image \(dir.file(.pstree)): pid \(id) appears twice")
            }
            try Self.checkPstreeEntry(entry, parents: parents.isEmpty ? nil : parents, dir)
            parents.insert(entry.pid)
        }
        guard !entries.isEmpty else { throw CheckpointError(.image, "image \(dir.file(.pstree)): no processes") }
        processes = try Self.processes(entries, dir)
        files = try Self.readFiles(dir)
        pipeData = try PipeRestore.read(.pipesData, dir)
        fifoData = try PipeRestore.read(.fifoData, dir)
        skQueues = try UnixSocketRestore.queues(dir)
        tcpStreams = try InetSocketRestore.readStreams(files, dir)
        // CRIU leaves out list images that would be empty.
        let remaps = dir.exists(.remapFpath) ? try dir.read(.remapFpath, as: RemapFilePathEntry.self) : []
        ghosts = try GhostFile.readAll(remaps, dir)
        for r in remaps where r.remapType == .linked { linkRemaps[r.origID] = r.remapID }
        for p in processes where !p.isZombie {
            for vma in p.mm.vmas where vma.status & VmaStatus.anonShared != 0 && vma.status & VmaStatus.sysvIPC == 0 && shmem[vma.shmid] == nil {
                var r = try dir.reader(.pagemapShmem(vma.shmid))
                do {
                    let head = try r.one(PagemapHead.self)
                    shmem[vma.shmid] = (head.pagesID, try Self.pagemapRuns(try r.all(PagemapEntry.self), image: dir.file(.pagemapShmem(vma.shmid))))
                } catch let e as ImageError { throw e.checkpointError }
            }
            for fd in p.fds where files[fd.id] == nil {
                throw CheckpointError(.image, "image \(dir.file(.fdinfo(p.filesID))): fd \(fd.fd) names file id \(fd.id), missing from \(ImageName.files)")
            }
            try Self.checkMappings(p, files: files, dir)
        }
        try readMemfds()
        try checkSharedMemory()
        if dir.exists(.seccomp) {
            seccompFilters = try Self.readSole(dir, .seccomp, as: SeccompEntry.self).seccompFilters
        }
        if dir.exists(.fileLocks) { fileLocks = try dir.read(.fileLocks, as: FileLockEntry.self) }
        mqueues = try MqueueRestore.read(dir)
        bpfMaps = try BpfMapEntries.readAll(dir, files: files)
        try checkPagesImages()
    }

    /// Each process's images, read and checked on every core (a 1+200 tree has ~1000 of
    /// them); the failure reported is the first in pstree order, as a sequential read's.
    private static func processes(_ entries: [PstreeEntry], _ dir: ImageDirectory) throws -> [Process] {
        let results = UnsafeMutableBufferPointer<Result<Process, Error>?>.allocate(capacity: entries.count)
        results.initialize(repeating: nil)
        defer { results.deinitialize(); results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: entries.count) { i in
            results[i] = Result { try process(entries[i], dir) }
        }
        return try results.map { try $0!.get() }
    }

    private static func process(_ dumped: PstreeEntry, _ dir: ImageDirectory) throws -> Process {
        var entry = dumped
        // CRIU lists a zombie's threads as [0]: its one core is core-PID.img.
        if entry.threads.isEmpty || entry.threads == [0] { entry.threads = [entry.pid] }
        let pid = Int32(entry.pid)
        var cores: [Int32: CoreEntry] = [:]
        for tid in entry.threads {
            let core = try readSole(dir, .core(tid), as: CoreEntry.self)
            guard core.mtype == .x8664 else {
                throw CheckpointError(.image, "image \(dir.file(.core(tid))): architecture \(core.mtype) cannot be restored on x86_64")
            }
            cores[Int32(tid)] = core
        }
        try checkCores(cores, pid: pid, dir)
        guard let main = cores[pid], main.hasTc else {
            throw CheckpointError(.image, "image \(dir.file(.core(pid))): no task core for pid \(pid)")
        }
        let zombie = main.tc.taskState == TaskState.dead || main.tc.taskState == TaskState.zombie
        var p = Process(entry: entry, cores: cores, isZombie: zombie)
        if zombie { return p }
        for (tid, core) in cores where !core.hasThreadInfo || !core.hasThreadCore {
            throw CheckpointError(.image, "image \(dir.file(.core(tid))): no registers for tid \(tid)")
        }
        p.mm = try readSole(dir, .mm(pid), as: MmEntry.self)
        var r = try dir.reader(.pagemap(pid))
        do {
            p.pagesID = try r.one(PagemapHead.self).pagesID
            let runs = try Self.pagemapRuns(try r.all(PagemapEntry.self), image: dir.file(.pagemap(pid)), parentAllowed: true)
            p.pagemap = runs.filter { !Self.isLazyOnly($0) }
            p.lazyPagemap = runs.filter(Self.isLazyOnly)
            if p.pagemap.contains(where: { $0.flags & PageFlags.parent != 0 }) && dir.parentImages == nil {
                throw CheckpointError(.image, "image \(dir.file(.pagemap(pid))): pages are in a parent image, and \(dir.path) has no parent link")
            }
            try checkRuns(runs, image: dir.file(.pagemap(pid)))
        } catch let e as ImageError { throw e.checkpointError }
        try checkMemoryMap(p, pid: pid, dir)
        // fdinfo images are named by the fd table's id (CRIU shares one between tasks
        // made with CLONE_FILES); ids-PID.img gives it, the pid when there is none.
        (p.filesID, p.fsID) = try tableIDs(pid, main: main, dir)
        p.fds = try dir.read(.fdinfo(p.filesID), as: FdinfoEntry.self)
        try checkFds(p.fds, filesID: p.filesID, dir)
        p.fs = try readSole(dir, .fs(pid), as: FsEntry.self)
        // CRIU 4 keeps sigactions in the task core; sigacts-PID.img is the older place.
        if dir.exists(.sigacts(pid)) || main.tc.sigactions.isEmpty {
            p.sigactions = try dir.read(.sigacts(pid), as: SaEntry.self)
            guard p.sigactions.count <= ImageLimits.signals else {
                throw CheckpointError(.image, "image \(dir.file(.sigacts(pid))): \(p.sigactions.count) sigactions, more than the \(ImageLimits.signals) signals")
            }
        } else {
            p.sigactions = main.tc.sigactions
        }
        return p
    }

    /// The areas and page runs of one process before anything is mapped: areas page-aligned,
    /// non-empty and apart, every run of pages (bounded by checkRuns) inside the areas.
    /// A damaged image is a one-line error here, never a trap or a wrong mapping later.
    static func checkMemoryMap(_ p: Process, pid: Int32, _ dir: ImageDirectory) throws {
        let page: UInt64 = 4096
        // Guard ranges (CRIU's VMA_AREA_GUARD) lie inside the areas they guard.
        let areas = p.mm.vmas.filter { $0.status != VmaStatus.guardRegion }.sorted { $0.start < $1.start }
        var previousEnd: UInt64 = 0
        for v in areas {
            guard v.start < v.end, v.start % page == 0, v.end % page == 0, v.start >= previousEnd else {
                throw CheckpointError(.image, "image \(dir.file(.mm(pid))): area \(v.start.hex)-\(v.end.hex) is empty, unaligned or overlaps the one before")
            }
            previousEnd = v.end
        }
        for run in p.pagemap {
            let end = run.vaddr + run.nrPages * page
            // Inside areas that follow each other without a gap.
            var covered = run.vaddr
            for v in areas where v.start <= covered && covered < v.end {
                covered = v.end
                if covered >= end { break }
            }
            guard covered >= end else {
                throw CheckpointError(.image, "image \(dir.file(.pagemap(pid))): pages \(run.vaddr.hex)-\(end.hex) lie outside the areas of \(dir.file(.mm(pid)).split(separator: "/").last!)")
            }
        }
    }

    /// The ids of the fd table of `pid` (from ids-PID.img, else from its core, else the
    /// pid) and of its fs (from ids-PID.img only).
    static func tableIDs(_ pid: Int32, main: CoreEntry, _ dir: ImageDirectory) throws -> (files: UInt32, fs: UInt32?) {
        var fs: UInt32?
        if dir.exists(.ids(pid)) {
            let ids = try readSole(dir, .ids(pid), as: TaskKobjIdsEntry.self)
            try checkIds(ids, core: main, pid: pid, dir)
            fs = ids.hasFsID ? ids.fsID : nil
            if ids.hasFilesID { return (ids.filesID, fs) }
        }
        if main.hasIds, main.ids.hasFilesID { return (main.ids.filesID, fs) }
        return (UInt32(pid), fs)
    }

    /// Pagemap entries as runs of pages in the pages image: the page count from nr_pages,
    /// or from compat_nr_pages in images of older CRIU. Runs in the parent images (an
    /// incremental dump; flagged PE_PARENT, or in_parent by older CRIU) take no room in
    /// the pages image; only a process's pagemap may have them (`parentAllowed`).
    /// PE_LAZY without PE_PRESENT: CRIU's lazy dump wrote no bytes for the run.
    static func isLazyOnly(_ e: PagemapEntry) -> Bool {
        e.flags & PageFlags.lazy != 0 && e.flags & (PageFlags.present | PageFlags.parent) == 0
    }

    static func pagemapRuns(_ entries: [PagemapEntry], image: String, parentAllowed: Bool = false) throws -> [PagemapEntry] {
        try entries.map { e in
            var run = e
            if !e.hasNrPages { run.nrPages = UInt64(e.compatNrPages) }
            if (e.hasInParent && e.inParent) || e.flags & PageFlags.parent != 0 {
                guard parentAllowed else {
                    throw CheckpointError(.unsupported, "image \(image): pages at \(e.vaddr.hex) are in a parent image (only a process's pages can be)")
                }
                run.flags |= PageFlags.parent
            }
            return run
        }
    }

    /// Every pages image must hold exactly the pages its pagemap announces.
    private func checkPagesImages() throws {
        var expected: [UInt32: UInt64] = [:]
        // Each pages image belongs to one pagemap: restore reads every one from offset 0.
        var users: [UInt32: String] = [:]
        func use(_ id: UInt32, _ pagemap: ImageName, _ runs: [PagemapEntry]) throws {
            if let other = users.updateValue(pagemap.fileName, forKey: id) {
                throw CheckpointError(.image, "image \(dir.file(pagemap)): pages_id \(id) is also the pages image of \(other)")
            }
            // checkRuns bounds every run to the address space: no sum of one pagemap overflows.
            expected[id] = runs.reduce(0) { $0 + ($1.flags & PageFlags.parent != 0 ? 0 : $1.nrPages) }
        }
        for p in processes where !p.isZombie { try use(p.pagesID, .pagemap(p.pid), p.pagemap) }
        for (shmid, s) in shmem { try use(s.pagesID, .pagemapShmem(shmid), s.runs) }
        for (id, pages) in expected {
            let path = dir.file(.pages(id))
            var st = stat()
            guard stat(path, &st) == 0 else { throw CheckpointError(.image, "image \(path): missing") }
            if UInt64(st.st_size) != pages * ImageLimits.page {
                throw CheckpointError(.image, "image \(path): \(st.st_size) bytes, its pagemap announces \(pages * ImageLimits.page)")
            }
        }
    }
}
