import Foundation
import LinuxKernel
import Images
import ProcFS

public struct DumpOptions {
    public var imagesDir: String
    public var leaveRunning = false
    /// Leave every process stopped (SIGSTOP) instead of running or killed (CRIU's -s).
    public var leaveStopped = false
    public var shellJob = false
    /// A slave pty whose master is outside the tree is the container's console, whose new
    /// master the restore hands back (CRIU's orphan_pts_master, set by runc).
    public var orphanPtsMaster = false
    /// Carry flock/POSIX/OFD locks (CRIU's --file-locks); without it a held lock refuses the dump.
    public var fileLocks = false
    /// Established TCP connections are dumped through repair mode (CRIU's --tcp-established).
    public var tcpEstablished = false
    /// CRIU's --tcp-close: connections are written without their state and not locked.
    public var tcpClose = false
    /// CRIU's --skip-in-flight: connections not yet accepted are left out.
    public var skipInFlight = false
    public var networkLock = NetworkLockMethod.iptables
    /// A cgroup freezer (v1 freezer.state or v2 cgroup.freeze directory) to freeze the
    /// tree with before seizing; always thawed again. `freezer` is what freezes it.
    public var freezeCgroup: String?
    public var freezer: TreeFreezer?
    /// The container's root directory as the caller sees it (runc: <bundle>/rootfs).
    public var root: String?
    /// External mounts: mount point in the tree -> key written in the images (CRIU's ext_mnt).
    public var externalMounts: [String: String] = [:]
    /// Mounts from outside the container that no key names are recorded as external with
    /// the host path they show (CRIU's --ext-mount-map auto, set by LXC).
    public var autoExternalMounts = false
    /// Terminals the caller owns and hands back at restore, as "tty[RDEV:DEV]" in hex
    /// (CRIU's external tty[..], LXC's console): a slave of one needs no --shell-job.
    public var externalTerminals: Set<String> = []
    /// CLONE_NEW* namespaces to be recreated empty at restore, not dumped (CRIU's empty_ns).
    public var emptyNamespaces: UInt64 = 0
    /// UNIX datagram sockets may be connected to named peers outside the tree (CRIU's ext_unix_sk).
    public var extUnixSk = false
    /// The largest deleted-but-open file saved in the images (CRIU's --ghost-limit, 1 MiB).
    public var ghostLimit: UInt64 = 1 << 20
    /// A deleted file still linked under another name gets a link of its own (--link-remap).
    public var linkRemap = false
    /// Namespaces the caller owns and gives back at restore, "net[INODE]" -> key written in
    /// the images (CRIU's external net[INODE]:KEY; runc: extRootNetNS).
    public var externalNamespaces: [String: String] = [:]
    public var extensions: [DumpExtension] = []
    public var notify: Notify?
    /// Where stats-dump goes, as CRIU puts it in its work directory (podman reads it
    /// there); the image directory when not set.
    public var workDir: String?
    /// Pages go to this page server (CRIU's --page-server), which writes pagemap-* and pages-*.
    public var pageServer: PageServerAddress?
    /// Parent images (CRIU's --prev-images-dir, relative to imagesDir): pages unchanged
    /// since them are left there, when write tracking (--track-mem) says which.
    public var parentImages: String?
    public var trackMemory = false
    /// dump --lazy-pages: the lazy areas' pages stay out of the images and go to it.
    public var lazyPages: LazyPagesDump?
    public init(imagesDir: String) { self.imagesDir = imagesDir }
}

/// Dumps a process tree: freeze, collect, write images, then resume or kill. A failure at
/// any point resumes every task as it was and leaves no inventory.img, so an incomplete
/// image directory never looks complete.
public enum Dumper {
    public static func dump(pid: Int32, options: DumpOptions, log: Log) throws -> DumpStatsEntry {
        try checkTarget(pid)
        if options.lazyPages != nil && (options.pageServer != nil || options.parentImages != nil || options.trackMemory) {
            throw CheckpointError(.unsupported, "dump --lazy-pages with a page server or parent images is not supported: lazy pages are served by the dump itself, from a full dump")
        }
        let images = ImageDirectory(path: options.imagesDir)
        try prepare(images)
        try DumpClient.check()
        try options.notify?("pre-dump", nil)
        // Taken before the freeze: tracking ends with this dump unless it leaves the tree
        // running with --track-mem, when it passes on to the next.
        let incremental = try IncrementalDump(images: images, parentPath: options.parentImages, root: pid,
                                              trackMemory: options.trackMemory,
                                              keepTracking: options.trackMemory && options.leaveRunning && !options.leaveStopped, log: log)
        // Connected before the freeze: an unreachable page server fails the dump untouched.
        let transfer = try options.pageTransfer(images: images)
        let freezeStart = DispatchTime.now()
        let tree = try FrozenTree.freeze(root: pid, freezer: options.freezer)
        var stats = DumpStatsEntry()
        stats.memwriteTime = 0
        stats.pagesLazy = 0
        stats.frozenTime = 0
        stats.memdumpTime = 0
        stats.freezingTime = micros(since: freezeStart)
        let frozenStart = DispatchTime.now()
        let inet = InetSocketDump(allowEstablished: options.tcpEstablished, log: log)
        inet.takesPending = !(options.leaveRunning || options.leaveStopped)
        inet.skipInFlight = options.skipInFlight
        inet.tcpClose = options.tcpClose
        inet.lockMethod = options.networkLock
        log.info("seized \(tree.processes.count) processes in \(stats.freezingTime) us")
        do {
            try options.notify?("network-lock", nil)
            try FaultPoint.dumpAfterSeize.check()
            try DumpClient.check()
            try checkSessions(tree, shellJob: options.shellJob)
            let userns = try checkNamespaces(tree)
            var namespaces = NamespaceIDs()
            let session = DumpSession(tree: tree, images: images, options: options, log: log)
            let memStats = try collect(tree, inet: inet, session: session, transfer: transfer, incremental: incremental, userns: userns, namespaces: &namespaces, memdumpTime: &stats.memdumpTime)
            if let userns, let inode = try NamespaceSet.inode(of: .user, pid: tree.root.pid), let id = namespaces.id(ofInode: inode) {
                try userns.write(to: images, id: id, log: log)
            }
            stats.pagesScanned = memStats.pagesScanned
            stats.pagesWritten = memStats.pagesWritten
            stats.pagesSkippedParent = memStats.pagesInParent
            stats.pagesLazy = UInt64(options.lazyPages?.pagesHeld ?? 0)
            try FaultPoint.dumpAfterMemory.check()
            try DumpClient.check()
            stats.frozenTime = micros(since: frozenStart)
            var s = StatsEntry()
            s.dump = stats
            try images.write(.statsDump, [s])
            // The inventory is written last: its presence marks a complete dump. The last
            // look at the client: past it, the tree is stopped (kill mode) regardless.
            try DumpClient.check()
            try images.syncToDisk()
            try images.write(.inventory, [inventory(tree, namespaces: &namespaces)])
            try images.syncToDisk()
            do { try options.notify?("post-dump", nil) } catch {
                unlink(images.file(.inventory))
                throw error
            }
            // The work directory's copy marks the point of no return: past post-dump the
            // tree is never resumed (kill mode), and `migrate` sends the images from here on.
            if let work = options.workDir, work != images.path {
                try? ImageDirectory(path: work).write(.statsDump, [s])
            }
        } catch {
            log.error("\(error)")
            inet.release()
            tree.release()
            try? options.notify?("network-unlock", nil)
            log.info("released every task; the tree keeps running")
            throw error
        }
        if options.leaveRunning || options.leaveStopped {
            inet.release()
            tree.release(stopped: options.leaveStopped)
            // --track-mem on a tree left running: the next dump can build on this one.
            if let next = incremental.next {
                do { try TrackingHolder.hand(next, root: pid) } catch { log.warn("write tracking ends here: \(error)") }
            }
        } else {
            tree.kill()
            inet.closeKeepingLock()
        }
        try options.notify?("network-unlock", nil)
        stats.frozenTime = micros(since: frozenStart)
        return stats
    }

    /// Trees the dumper cannot freeze, named with the reason rather than with the EPERM
    /// that seizing them would give.
    static func checkTarget(_ pid: Int32) throws {
        let me = getpid()
        if pid == me { throw CheckpointError(.invalidArgument, "pid \(pid) is the dumper itself: dump it from another process") }
        if pid == 1 {
            throw CheckpointError(.invalidArgument, "pid 1 is the init of the dumper's pid namespace: a namespace's init is dumped from outside it (a container's init from the host)")
        }
        var ancestor = getppid()
        while ancestor > 1 {
            if ancestor == pid {
                throw CheckpointError(.invalidArgument, "pid \(pid) is an ancestor of the dumper: its tree holds the dumper, which cannot freeze itself")
            }
            guard let stat = try? TaskStat.read(pid: ancestor, tid: nil) else { break }
            ancestor = stat.ppid
        }
    }

    static func prepare(_ images: ImageDirectory) throws {
        var isDir: ObjCBool = false
        if !FileManager.default.fileExists(atPath: images.path, isDirectory: &isDir) {
            if mkdir(images.path, 0o700) != 0 { throw CheckpointError.errno("create image directory \(images.path)") }
            isDir = true
        }
        guard isDir.boolValue else {
            throw CheckpointError(.invalidArgument, "image directory \(images.path): not a directory")
        }
        guard access(images.path, W_OK) == 0 else {
            let err = Errno.current
            throw CheckpointError(.invalidArgument, "image directory \(images.path): not writable (\(err.detail))", errno: err)
        }
        if images.exists(.inventory) && unlink(images.file(.inventory)) != 0 {
            throw CheckpointError.errno("remove old \(images.file(.inventory))")
        }
    }

    /// Sessions and groups must be led from inside the tree, unless the caller says the
    /// tree is a shell job (then it joins the restorer's session and group).
    private static func checkSessions(_ tree: FrozenTree, shellJob: Bool) throws {
        guard !shellJob else { return }
        let pids = Set(tree.processes.map(\.vpid))
        for p in tree.processes where !p.isZombie {
            if !pids.contains(p.vsid) {
                throw CheckpointError(.unsupported, "pid \(p.pid): its session leader \(p.stat.session) is outside the dumped tree (dump with --shell-job, or make the tree call setsid)")
            }
            if !pids.contains(p.vpgid) {
                throw CheckpointError(.unsupported, "pid \(p.pid): its process group leader \(p.stat.pgrp) is outside the dumped tree (dump with --shell-job)")
            }
        }
    }

    /// What the restore cannot rebuild yet must not be dumped as if it could: a user
    /// namespace of a shape it cannot make (see UserNamespace.dumped), and tasks whose
    /// namespaces differ from the root's. Returns the tree's own user namespace.
    private static func checkNamespaces(_ tree: FrozenTree) throws -> UserNamespace? {
        let root = try NamespaceSet.read(pid: tree.root.pid)
        let userns = try UserNamespace.dumped(tree)
        for p in tree.processes.dropFirst() where !p.isZombie {
            if let kind = try NamespaceSet.read(pid: p.pid).external(to: root).first {
                throw CheckpointError(.unsupported, "pid \(p.pid): its \(kind.rawValue) namespace differs from the root's (nested namespaces cannot be restored yet)")
            }
        }
        return userns
    }

    /// The tree's images; the extensions' (namespaces, cgroups, mounts) on a thread meanwhile.
    private static func collect(_ tree: FrozenTree, inet: InetSocketDump, session: DumpSession, transfer: PageTransfer, incremental: IncrementalDump, userns: UserNamespace?, namespaces: inout NamespaceIDs, memdumpTime: inout UInt32) throws -> MemoryStats {
        let images = session.images, options = session.options, log = session.log
        var extensions: BackgroundWork<Void>?
        // Never left running past a failure: they read the tree, which is released then.
        defer { _ = try? extensions?.wait() }
        let locks = FileLocksDump(enabled: options.fileLocks)
        let files = FileTableDump(inet: inet)
        files.unixSockets.allowExternal = options.extUnixSk
        files.unixSockets.takesPending = inet.takesPending
        files.ghostLimit = options.ghostLimit
        files.linkRemaps = options.linkRemap
        var collected = false
        // A failed dump leaves no link of its own behind (--link-remap).
        defer { if !collected { files.removeLinkRemaps() } }
        let memory = MemoryDump(transfer: transfer, files: files)
        memory.lazyPages = options.lazyPages
        let seccomp = SeccompDump()
        let shared = try SharedTables(tree)
        var pstree: [PstreeEntry] = []
        var memTime: UInt64 = 0
        files.kinds.treePids = Dictionary(uniqueKeysWithValues: tree.processes.map { ($0.pid, $0.vpid) })
        files.kinds.treeTids = Dictionary(tree.processes.flatMap { zip($0.threads, $0.vthreads) }) { a, _ in a }
        for p in tree.processes {
            var entry = PstreeEntry()
            entry.pid = UInt32(p.vpid)
            entry.ppid = p.pid == tree.root.pid ? 0 : UInt32(p.vppid)
            entry.pgid = UInt32(p.vpgid)
            entry.sid = UInt32(p.vsid)
            entry.threads = p.vthreads.map { UInt32($0) }
            pstree.append(entry)
            if p.isZombie {
                try images.write(.core(p.vpid), [TaskDump.zombie(p)])
                continue
            }
            let status = try tree.status(p.pid)
            let firstAreas = try ProcMaps.parse(maps: readProcFile("/proc/\(p.pid)/maps"))
            let probe = try ProcessProbe(pid: p.pid, threads: p.threads, areas: firstAreas)
            let task: TaskDump
            do {
                task = try TaskDump.collect(p, in: tree, probe: probe, seccomp: seccomp)
                try probe.finish(mainThread: p.pid)
            } catch {
                probe.abandon(mainThread: p.pid)
                throw error
            }
            log.debug("pid \(p.pid): task state collected")
            // smaps (VmFlags: the kernel walks every resident page) while the rest is read;
            // a dump that leaves tracking on reads it once it has registered the areas.
            let described = incremental.next == nil ? BackgroundWork { try ProcMaps.read(pid: p.pid) } : nil
            for (tid, vtid) in zip(p.threads, p.vthreads) { try images.write(.core(vtid), [userns.inside(task.cores[tid]!)]) }
            try images.write(.sigacts(p.vpid), task.sigactions)
            var ids = try namespaces.ids(for: p.pid, kobj: p.vpid)
            shared.apply(to: &ids, pid: p.pid)
            try images.write(.ids(p.vpid), [ids])
            if p.pid == tree.root.pid {
                // They read /proc, cgroupfs and this ids image only: while the tasks' state and
                // memory are dumped (mostly waits: smaps, tar runs of tmpfs contents).
                extensions = BackgroundWork { for ext in options.extensions { try ext.dump(session) } }
            }
            if shared.ownsFiles(p.pid, vpid: p.vpid) {
                let fds = try files.dump(pid: p.pid)
                try images.write(.fdinfo(p.vpid), fds)
                try locks.add(pid: p.pid, vpid: p.vpid, fds: fds)
            }
            try images.write(.fs(p.vpid), [fsEntry(p.pid, status: status, files: files)])

            log.debug("pid \(p.pid): files and namespaces collected")
            let memStart = DispatchTime.now()
            let pages = try incremental.pages(of: p, described: described)
            log.debug("pid \(p.pid): \(pages.areas.count) areas and the pages to dump chosen")
            let vmas = try memory.dump(pid: p.pid, name: p.vpid, areas: pages.areas, selection: pages.selection, described: described)
            log.debug("pid \(p.pid): \(memory.stats.pagesWritten) pages dumped so far")
            memTime += UInt64(micros(since: memStart))
            let mm = try mmEntry(p, brk: task.brk, dumpable: task.dumpable, vmas: vmas, files: files)
            try images.write(.mm(p.vpid), [mm])
            memory.lazyPages?.describe(.init(pid: p.vpid, ppid: Int32(entry.ppid), isZombie: false, exeFileID: mm.exeFileID, vmas: mm.vmas))
            log.info("pid \(p.pid): \(p.threads.count) threads, \(vmas.count) vmas")
        }
        try files.terminals.finish(tree: tree, shellJob: options.shellJob, orphanPtsMaster: options.orphanPtsMaster,
                                  external: options.externalTerminals, log: log)
        try files.mqueues.checkUnopened(rootPid: tree.root.pid)
        for m in files.kinds.memfdContents { try memory.dumpShmem(path: m.path, shmid: m.shmid) }
        files.recordMounts = (try? ProcTree.link("/proc/\(tree.root.pid)/ns/mnt")) != (try? ProcTree.link("/proc/self/ns/mnt"))
        try files.resolveNamespaceFiles { namespaces.id(ofInode: $0) }
        try files.write(to: images)
        try locks.checkAllFound(tree)
        try locks.write(to: images)
        try seccomp.write(to: images)
        try images.write(.pstree, pstree)
        let lazyStart = DispatchTime.now()
        try memory.sendLazyTree()
        memTime += UInt64(micros(since: lazyStart))
        memdumpTime = UInt32(min(memTime, UInt64(UInt32.max)))
        log.debug("images of the tree written; ending the page transfer")
        try memory.transfer.finish()
        try extensions?.wait()
        collected = true
        return memory.stats
    }

    private static func fsEntry(_ pid: Int32, status: TaskStatus, files: FileTableDump) throws -> FsEntry {
        var fs = FsEntry()
        fs.cwdID = try files.placeEntry(of: pid, "cwd")
        fs.rootID = try files.placeEntry(of: pid, "root")
        fs.umask = status.umask
        return fs
    }

    private static func mmEntry(_ p: FrozenTree.Process, brk: UInt64, dumpable: UInt32, vmas: [VmaEntry], files: FileTableDump) throws -> MmEntry {
        let s = p.stat
        var mm = MmEntry()
        mm.mmStartCode = s.startCode; mm.mmEndCode = s.endCode
        mm.mmStartData = s.startData; mm.mmEndData = s.endData
        mm.mmStartStack = s.startStack; mm.mmStartBrk = s.startBrk; mm.mmBrk = brk
        mm.mmArgStart = s.argStart; mm.mmArgEnd = s.argEnd
        mm.mmEnvStart = s.envStart; mm.mmEnvEnd = s.envEnd
        let exe = try ProcTree.link("/proc/\(p.pid)/exe")
        if exe.hasSuffix(" (deleted)") {
            throw CheckpointError(.unsupported, "pid \(p.pid): its executable \(exe) was deleted")
        }
        mm.exeFileID = files.pathEntry(exe)
        guard let auxv = FileManager.default.contents(atPath: "/proc/\(p.pid)/auxv") else {
            throw CheckpointError.errno("read /proc/\(p.pid)/auxv")
        }
        // At most CRIU's AT_VECTOR_SIZE words (44 on x86_64), as CRIU reads them: its
        // restore calls more "Image corrupted". What is cut is the closing AT_NULL on
        // today's kernels, which PR_SET_MM_MAP puts back.
        let words = min(auxv.count / 8, CriuLimits.auxvWords)
        mm.mmSavedAuxv = auxv.withUnsafeBytes { raw in (0..<words).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) } }
        mm.vmas = vmas
        mm.dumpable = Int32(dumpable)
        mm.thpDisabled = MemoryDump.thpDisabled(pid: p.pid)
        mm.aios = AioRing.entries(vmas)
        return mm
    }

    /// root_ids are the dumper's own ids, as CRIU writes them: a restore compares the root
    /// task's ids with them to know which namespaces to create and that the root task
    /// shares no mm, fd table, fs or sighand with its restorer (CRIU refuses the images
    /// otherwise: "Image corruption on kIDs data"). Per-namespace images are named by id.
    private static func inventory(_ tree: FrozenTree, namespaces: inout NamespaceIDs) throws -> InventoryEntry {
        var inv = InventoryEntry()
        inv.imgVersion = 2
        inv.fdinfoPerID = true
        let vpids = Set(tree.processes.map(\.vpid))
        var own = getpid()
        while vpids.contains(own) { own += 1 }
        inv.rootIds = try namespaces.ids(for: getpid(), kobj: own)
        inv.nsPerID = true
        inv.lsmtype = .noLsm
        var ts = Glibc.timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        inv.dumpUptime = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec / 1000)
        return inv
    }
}

extension ImageDirectory {
    /// Every image (and the directory) on disk: one syncfs, not an fsync per image (a
    /// journal commit each on disk, several per task, all frozen time).
    func syncToDisk() throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open image directory \(path)") }
        defer { close(fd) }
        try Syscall.raw("syncfs of image directory \(path)", SyscallNumber.syncfs, Int(fd))
    }
}
