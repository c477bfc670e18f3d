import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

public struct RestoreOptions {
    public var imagesDir: String
    public var detach = false
    public var pidfile: String?
    public var shellJob = false
    /// Receives the new master of the tree's terminal whose master was outside the dump
    /// (CRIU's orphan_pts_master: runc forwards it to its console socket).
    public var orphanPtsMaster: ((Int32) throws -> Void)?
    /// Take the dumped file locks again (CRIU's --file-locks); images with locks need it.
    public var fileLocks = false
    /// Established TCP connections in the images may be restored (CRIU's --tcp-established).
    public var tcpEstablished = false
    /// CRIU's --tcp-close: connections come back closed.
    public var tcpClose = false
    public var networkLock = NetworkLockMethod.iptables
    /// Directory to become the tree's root (runc: /run/runc/ID/criu-root).
    public var root: String?
    /// The restored root becomes a child of our parent, not of us (CRIU's rst_sibling).
    public var restoreSibling = false
    /// External mounts: key in the images -> path on this host (CRIU's ext_mnt).
    public var externalMounts: [String: String] = [:]
    /// Mounts the dump found external by itself are bound from the host path it recorded
    /// (CRIU's --ext-mount-map auto); without it such images are refused.
    public var autoExternalMounts = false
    /// Our fds to use for files the images name by key, e.g. "pipe:[1234]" (CRIU's inherit_fd).
    public var inheritFds: [String: Int32] = [:]
    /// cgroup controller -> path to restore under (CRIU's cg_root).
    public var cgroupRoots: [String: String] = [:]
    /// CLONE_NEW* namespaces to create empty (CRIU's empty_ns).
    public var emptyNamespaces: UInt64 = 0
    public var extensions: [RestoreExtension] = []
    public var notify: Notify?
    /// Where stats-restore goes after a successful restore (CRIU's work directory); the
    /// images are never written.
    public var workDir: String?
    /// Lazy restore: private anonymous memory is left to the lazy-pages daemon behind this.
    public var lazyPages: LazyPagesSink?
    public init(imagesDir: String) { self.imagesDir = imagesDir }
}

public struct RestoreResult {
    public let rootPid: Int32
    public let stats: RestoreStatsEntry
}

/// Rebuilds a dumped tree with its original PIDs. All or nothing: on any failure every
/// task it created is killed, and the images are only read.
public enum Restorer {
    /// The restore, step by step; everything the steps share is in `session` (options, log,
    /// pty reservations, created pids, rollback actions) and `resources` (the files, pipes
    /// and shared memory made in the restorer for the tasks to take).
    public static func restore(options: RestoreOptions, log: Log) throws -> RestoreResult {
        let start = DispatchTime.now()
        let session = RestoreSession(options: options, log: log)
        try IncomingImages.wait(session.images.path, log: log)
        let images = try CheckpointImages(dir: session.images)
        try checkOptions(images, session)
        let userns = try UserNamespace.load(session.images)
        let flags = try namespaceFlags(images, session) | (userns == nil ? 0 : CloneFlags.newUser.rawValue)
        if flags & CloneFlags.newPID.rawValue == 0 { try checkPidsFree(images) }
        let stub = try stubAddress(images)
        let resources = try RestoreResources(session: session, images: images)
        let pages = PagesImage(dir: images.dir, populate: options.lazyPages == nil)
        let inheritance = MemoryInheritance(images)
        // Every restored task inherits this fd from the root stub and takes its files through
        // it (pidfd_getfd), even in a new pid namespace; in a user namespace, a socket.
        let socket = userns == nil ? nil : try RestorerSocket()
        let selfPidfd = try socket?.theirs ?? Syscall.rawFd("pidfd_open of the restorer", SyscallNumber.pidfdOpen, Int(getpid()))
        defer { if socket == nil { close(selfPidfd) } }
        for ext in options.extensions { session.onRollBack { ext.rollBack(session) } }
        var stats = RestoreStatsEntry()
        stats.pagesCompared = 0
        stats.pagesSkippedCow = 0
        do {
            let root = try spawnRoot(images, stub: stub, flags: flags, session: session, userns: userns, socket: socket)
            try root.cleanInheritance(keeping: selfPidfd)
            try setUpNamespaces(root: root, flags: flags, resources: resources)
            try root.ownCgroupNamespace()
            let processes = try createTree(images, root: root, session: session, beforeChildren: {
                try $0.prepareSharedMemory(inheritance, resources: resources, pages: pages, pidfd: selfPidfd)
            }) { leader in
                try leader.takeControllingTerminal(resources: resources, pidfd: selfPidfd)
            }
            resources.kinds.hostPids = Dictionary(uniqueKeysWithValues: processes.map { ($0.pid, $0.hostPid) })
            stats.forkingTime = micros(since: start)
            log.info("created \(processes.count) processes")
            try FaultPoint.restoreAfterFork.check()
            for p in processes where !p.image.isZombie {
                try rebuild(p, resources: resources, pages: pages, inheritance: inheritance, selfPidfd: selfPidfd)
                stats.pagesRestored += p.image.pagemap.reduce(0) { $0 + $1.nrPages }
            }
            stats.pagesCompared = inheritance.pagesCompared
            stats.pagesSkippedCow = inheritance.pagesSkippedCow
            try resources.finishFiles(hostTids: Dictionary(processes.flatMap { $0.threads }) { a, _ in a })
            try resources.sealMemfds()
            for p in processes.reversed() where p.image.isZombie { try p.becomeZombie(pidfd: selfPidfd) }
            let live = processes.filter { !$0.image.isZombie }
            try RestoredProcess.finishAll(live)
            try resources.inet.finish(log: log)
            try resources.inet.unlock(log: log)
            try options.notify?("post-restore", root.hostPid)
            try FaultPoint.restoreBeforeResume.check()
            try writePidfile(root.hostPid, session)
            try options.notify?("pre-resume", nil)
            try resume(live)
            options.lazyPages?.finish()
            stats.restoreTime = micros(since: start)
            writeStats(stats, session)
            try? options.notify?("post-resume", nil)
            return RestoreResult(rootPid: root.hostPid, stats: stats)
        } catch {
            log.error("\(error)")
            session.rollBack()
            options.lazyPages?.finish()
            throw error
        }
    }

    private static func checkOptions(_ images: CheckpointImages, _ session: RestoreSession) throws {
        if !images.fileLocks.isEmpty && !session.options.fileLocks {
            throw CheckpointError(.invalidArgument, "images in \(session.options.imagesDir) hold \(images.fileLocks.count) file locks: restore with --file-locks")
        }
        try checkLazyRuns(images, lazy: session.options.lazyPages != nil)
    }

    /// The root exists, stopped, in its new namespaces: the extensions build what lives in
    /// them (mounts, hostname, IPC objects, cgroups) before any task gets files or memory.
    private static func setUpNamespaces(root: RestoredProcess, flags: UInt64, resources: RestoreResources) throws {
        let session = resources.session
        try session.options.notify?("setup-namespaces", root.hostPid)
        for ext in session.options.extensions { try ext.setUp(session) }
        if flags & CloneFlags.newNS.rawValue != 0 { try resources.resolvePaths(inRootOf: root.hostPid) }
        if InetSocketDump.foreignNetns(root.hostPid) != nil { resources.inet.netnsPid = root.hostPid }
        try session.options.notify?("post-setup-namespaces", nil)
    }

    /// One process from stub to a task that only waits for its registers: memory, files,
    /// task state, threads, then per thread its state, credentials and seccomp, last.
    private static func rebuild(_ p: RestoredProcess, resources: RestoreResources, pages: PagesImage, inheritance: MemoryInheritance, selfPidfd: Int32) throws {
        let session = resources.session
        try p.blockSignals()
        let pidfd = try p.restorerPidfd(inherited: selfPidfd)
        try p.buildMemory(resources: resources, pages: pages, pidfd: pidfd, plan: inheritance)
        try p.installFiles(resources: resources, pidfd: pidfd)
        try p.restoreForegroundGroup(resources: resources, pidfd: pidfd)
        try p.restoreTaskState(resources: resources, pidfd: pidfd)
        try p.dropRestorerPidfd(pidfd)
        try p.createThreads(filters: resources.images.seccompFilters)
        session.created(p.threads.map(\.host))
        try p.blockSignals()
        for t in p.threads { try p.restoreThreadState(t) }
        try p.restorePosixTimers()
        for t in p.threads {
            try p.restoreCredentialsAndFilters(t, filters: resources.images.seccompFilters, restorer: session.restorerStatus)
        }
        session.log.info("pid \(p.pid): memory, files and \(p.threads.count) threads restored")
    }

    private static func writePidfile(_ pid: Int32, _ session: RestoreSession) throws {
        guard let pidfile = session.options.pidfile else { return }
        // Whole or absent for whoever reads it (a new file renamed in place), not synced:
        // Foundation's atomic write syncs, ~2 ms on the restore's path.
        let temp = pidfile + ".\(getpid()).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let text = Array("\(pid)\n".utf8)
        let written = fd >= 0 && text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == text.count
        let failure = errno
        if fd >= 0 { close(fd) }
        guard written, rename(temp, pidfile) == 0 else {
            let e = written ? errno : failure
            unlink(temp)
            throw CheckpointError(.invalidArgument, "pid file \(pidfile): \(String(cString: strerror(e)))")
        }
    }

    /// Everything is in place: the dumped signal masks, then every task goes at once.
    private static func resume(_ live: [RestoredProcess]) throws {
        for p in live {
            for (vtid, tid) in p.threads {
                try Ptrace(tid).setSigmask(p.image.blockedSignals(vtid))
            }
        }
        for p in live { try p.letGo() }
    }

    private static func writeStats(_ stats: RestoreStatsEntry, _ session: RestoreSession) {
        guard let work = session.options.workDir else { return }
        var s = StatsEntry()
        s.restore = stats
        try? ImageDirectory(path: work).write(.statsRestore, [s])
    }

    /// The namespaces the root task is created in: the extensions' (mounts, uts, ipc...),
    /// those asked to be made empty, and a pid namespace when the tree had its own.
    private static func namespaceFlags(_ images: CheckpointImages, _ session: RestoreSession) throws -> UInt64 {
        var flags = session.options.emptyNamespaces
        for ext in session.options.extensions { flags |= try ext.namespaceFlags(session) }
        for ext in session.options.extensions { flags &= ~(try ext.joinedNamespaces(session)) }
        if images.processes[0].pid == 1 { flags |= CloneFlags.newPID.rawValue }
        return flags
    }

    private static func checkPidsFree(_ images: CheckpointImages) throws {
        for p in images.processes {
            for tid in p.entry.threads where access("/proc/\(tid)", F_OK) == 0 {
                throw CheckpointError(.busy, "pid \(tid) is in use: cannot restore task \(tid) of pid \(p.pid) (\((try? readProcFile("/proc/\(tid)/comm"))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"))")
            }
        }
    }

    /// The root task: a stub made by clone3 in the namespaces `flags` names, seized by us
    /// (in a user namespace, with its maps written before anything runs inside).
    /// With rst_sibling it becomes a child of our parent (runc) rather than of us. The
    /// clone runs on a thread of its own, which the extensions may move into namespaces
    /// first; seizing works from any thread, so the tracer stays the calling one.
    private static func spawnRoot(_ images: CheckpointImages, stub: UInt64, flags: UInt64, session: RestoreSession,
                                  userns: UserNamespace?, socket: RestorerSocket?) throws -> RestoredProcess {
        let root = images.processes[0]
        let options = session.options
        let cloneParent: UInt64 = 0x8000
        let r = try NamespaceJoin.onOwnThread {
            try userns?.prepareCloneThread(groups: root.main.threadCore.creds.groups)
            for ext in options.extensions { try ext.prepareRootClone(session) }
            let code = RestoredProcess.stubCode
            let setTid: [Int32] = [root.pid]
            return setTid.withUnsafeBufferPointer { tids in
                code.withUnsafeBufferPointer {
                    oc_spawn_stub(flags | (options.restoreSibling ? cloneParent : 0), tids.baseAddress, 1, stub, Int(RestoredProcess.stubSize), $0.baseAddress, $0.count)
                }
            }
        }
        if r == -EEXIST { throw CheckpointError(.busy, "pid \(root.pid) is in use: cannot restore the root task") }
        if r < 0 { throw CheckpointError.errno("clone3 of the root task (pid \(root.pid), flags \(flags.hex))", -r) }
        let ptrace = Ptrace(r)
        do {
            try ptrace.seize(options: RestoredProcess.tracing)
            try ptrace.interrupt()
            while true {
                guard let ev = try TaskEvent.wait(r) else { continue }
                if case .stopped(_, Ptrace.eventStop) = ev { break }
                if case .stopped(let sig, _) = ev { try ptrace.cont(signal: sig == SIGSTOP ? 0 : sig); continue }
                throw CheckpointError(.invalidState, "restore stub \(r) ended before it was seized (\(ev))")
            }
            try userns?.writeMaps(pid: r)
            let task = try RestoredProcess(image: root, hostPid: r, stub: stub)
            task.enter(userns, socket: socket)
            session.rootPid = r
            session.created([r])
            return task
        } catch {
            Glibc.kill(r, SIGKILL)
            throw error
        }
    }

    /// `sessionMade` runs in each session leader right after its setsid, before its children
    /// exist; `beforeChildren` in each process right before its children are forked.
    private static func createTree(_ images: CheckpointImages, root rootTask: RestoredProcess, session: RestoreSession,
                                   beforeChildren: (RestoredProcess) throws -> Void, sessionMade: (RestoredProcess) throws -> Void) throws -> [RestoredProcess] {
        let root = images.processes[0]
        var byPid: [Int32: RestoredProcess] = [root.pid: rootTask]
        var ordered: [RestoredProcess] = [rootTask]
        let pids = Set(images.processes.map(\.pid))
        // The group each task is in once made (a child inherits its parent's), where known:
        // one already in its dumped group needs no setpgid (a tree of 200 asked 200 times).
        var group: [Int32: UInt32] = [:]
        for image in images.processes {
            guard let me = byPid[image.pid] else {
                throw CheckpointError(.image, "pstree.img: pid \(image.pid) has parent \(image.entry.ppid), which is not in the tree")
            }
            // A session leader makes its session before its children are forked into it.
            if image.entry.sid == image.entry.pid {
                try me.call("setsid", SyscallNumber.setsid)
                try sessionMade(me)
                group[image.pid] = image.entry.pid
            }
            try beforeChildren(me)
            let children = images.processes.filter { Int32($0.entry.ppid) == image.pid && $0.pid != root.pid }
            let sharing = children.map { me.sharingFlags(for: $0) }
            let hosts = try me.createChildren(zip(children.map(\.pid), sharing).map { ($0, $1) }) { session.created([$0]) }
            for ((child, sharing), host) in zip(zip(children, sharing), hosts) {
                let task = try RestoredProcess(image: child, hostPid: host, stub: rootTask.stub)
                task.enter(rootTask.userNamespace, socket: rootTask.restorerSocket)
                me.adopt(task, sharing: sharing)
                byPid[child.pid] = task
                group[child.pid] = group[image.pid]
                ordered.append(task)
            }
        }
        // Group leaders first, then the members join them.
        let byLeader = ordered.sorted { ($0.image.entry.pgid == $0.image.entry.pid ? 0 : 1) < ($1.image.entry.pgid == $1.image.entry.pid ? 0 : 1) }
        for p in byLeader where pids.contains(Int32(p.image.entry.pgid)) && p.image.entry.sid != p.image.entry.pid
            && group[p.pid] != p.image.entry.pgid {
            try p.call("setpgid", SyscallNumber.setpgid, 0, UInt64(p.image.entry.pgid))
        }
        return ordered
    }

}

extension RestoredProcess {
    /// No signal may be delivered while the process is rebuilt; the dumped masks come last.
    func blockSignals() throws {
        for (_, tid) in threads { try Ptrace(tid).setSigmask(~UInt64(0)) }
    }
}
