import Foundation
import CShim
import Images
import ProcFS

public struct RestoreOptions {
    public var imagesDir: String
    public var detach = false
    public var pidfile: String?
    public var shellJob = false
    /// Directory to become the tree's root (runc: /run/runc/ID/criu-root).
    public var root: String?
    /// The restored root becomes a child of our parent, not of us (CRIU's rst_sibling).
    public var restoreSibling = false
    /// External mounts: key in the images -> path on this host (CRIU's ext_mnt).
    public var externalMounts: [String: String] = [:]
    /// Our fds to use for files the images name by key, e.g. "pipe:[1234]" (CRIU's inherit_fd).
    public var inheritFds: [String: Int32] = [:]
    /// cgroup controller -> path to restore under (CRIU's cg_root).
    public var cgroupRoots: [String: String] = [:]
    /// CLONE_NEW* namespaces to create empty (CRIU's empty_ns).
    public var emptyNamespaces: UInt64 = 0
    public var extensions: [RestoreExtension] = []
    public var notify: Notify?
    public init(imagesDir: String) { self.imagesDir = imagesDir }
}

public struct RestoreResult {
    public let rootPid: Int32
    public let stats: RestoreStatsEntry
}

/// Rebuilds a dumped tree with its original PIDs. All or nothing: on any failure every
/// task it created is killed, and the images are only read.
public enum Restorer {
    public static func restore(options: RestoreOptions, log: Log) throws -> RestoreResult {
        let start = DispatchTime.now()
        let images = try CheckpointImages(dir: ImageDirectory(path: options.imagesDir))
        try checkPidsFree(images)
        let stub = try stubAddress(images)
        let resources = RestoreResources(images: images)
        let pages = PagesImage(dir: images.dir)
        var created: [Int32] = []
        var stats = RestoreStatsEntry()
        stats.pagesCompared = 0
        stats.pagesSkippedCow = 0
        do {
            let processes = try createTree(images, stub: stub, shellJob: options.shellJob, created: &created)
            stats.forkingTime = micros(since: start)
            log.info("created \(processes.count) processes")
            try FaultPoint.restoreAfterFork.check()
            for p in processes where !p.image.isZombie {
                try p.blockSignals()
                try p.moveSpecialAreas()
                let pidfd = try p.openRestorerPidfd()
                try p.buildMemory(resources: resources, pages: pages, pidfd: pidfd)
                try p.installFiles(resources: resources, pidfd: pidfd)
                try p.restoreTaskState(resources: resources, pidfd: pidfd)
                try p.call("close pidfd", SyscallNumber.close, UInt64(pidfd))
                try p.createThreads()
                created += p.threads.filter { !created.contains($0) }
                try p.blockSignals()
                for tid in p.threads { try p.restoreThreadState(tid) }
                for tid in p.threads { try p.restoreSeccomp(tid, filters: images.seccompFilters) }
                stats.pagesRestored += p.image.pagemap.reduce(0) { $0 + $1.nrPages }
                log.info("pid \(p.pid): memory, files and \(p.threads.count) threads restored")
            }
            for p in processes.reversed() where p.image.isZombie {
                try p.becomeZombie()
            }
            let live = processes.filter { !$0.image.isZombie }
            for p in live { try p.finish() }
            try FaultPoint.restoreBeforeResume.check()
            if let pidfile = options.pidfile {
                do { try "\(images.processes[0].pid)\n".write(toFile: pidfile, atomically: true, encoding: .utf8) } catch {
                    throw CheckpointError(.invalidArgument, "pid file \(pidfile): \(error.localizedDescription)")
                }
            }
            // Everything is in place: let every task go at once.
            for p in live {
                for tid in p.threads {
                    try Ptrace(tid).setSigmask(p.image.cores[tid]!.threadCore.blkSigset)
                }
            }
            for p in live {
                let stopped = p.image.main.tc.taskState == TaskDump.taskStopped
                for tid in p.threads { try Ptrace(tid).detach(signal: stopped && tid == p.pid ? SIGSTOP : 0) }
            }
        } catch {
            log.error("\(error)")
            kill(created)
            log.info("killed the \(created.count) tasks this restore created")
            throw error
        }
        stats.restoreTime = micros(since: start)
        return RestoreResult(rootPid: images.processes[0].pid, stats: stats)
    }

    private static func checkPidsFree(_ images: CheckpointImages) throws {
        for p in images.processes {
            for tid in p.entry.threads where access("/proc/\(tid)", F_OK) == 0 {
                throw CheckpointError(.busy, "pid \(tid) is in use: cannot restore task \(tid) of pid \(p.pid) (\((try? readProcFile("/proc/\(tid)/comm"))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"))")
            }
        }
    }

    /// A hole for the stub in every dumped address space and in ours.
    private static func stubAddress(_ images: CheckpointImages) throws -> UInt64 {
        var taken: [(UInt64, UInt64)] = images.processes.flatMap { $0.mm.vmas.map { ($0.start, $0.end) } }
        taken += try ProcMaps.parse(maps: readProcFile("/proc/self/maps")).map { ($0.start, $0.end) }
        let size = RestoredProcess.stubSize
        var candidate: UInt64 = 0x1000_0000
        while candidate < 0x7f00_0000_0000 {
            let end = candidate + size
            if let clash = taken.first(where: { $0.0 < end && $0.1 > candidate }) {
                candidate = (clash.1 + 0xffff) & ~UInt64(0xffff)
            } else {
                return candidate
            }
        }
        throw CheckpointError(.invalidState, "no free address range for the restore stub")
    }

    private static func createTree(_ images: CheckpointImages, stub: UInt64, shellJob: Bool, created: inout [Int32]) throws -> [RestoredProcess] {
        let root = images.processes[0]
        let code = SyscallInjector.code
        let r = code.withUnsafeBufferPointer { oc_spawn_stub(root.pid, stub, Int(RestoredProcess.stubSize), $0.baseAddress, $0.count) }
        if r == -EEXIST { throw CheckpointError(.busy, "pid \(root.pid) is in use: cannot restore the root task") }
        if r < 0 { throw CheckpointError.errno("clone3 for root pid \(root.pid)", -r) }
        created.append(r)
        guard case .stopped? = try TaskEvent.wait(r) else {
            throw CheckpointError(.invalidState, "restore stub \(r) did not start")
        }
        try Ptrace(r).setOptions(Ptrace.optExitKill | Ptrace.optTraceClone | Ptrace.optTraceFork | Ptrace.optTraceVfork | Ptrace.optTraceSysGood)
        let rootTask = try RestoredProcess(image: root, stub: stub)
        try rootTask.cleanInheritance()
        var byPid: [Int32: RestoredProcess] = [root.pid: rootTask]
        var ordered: [RestoredProcess] = [rootTask]
        let pids = Set(images.processes.map(\.pid))
        for image in images.processes {
            guard let me = byPid[image.pid] else {
                throw CheckpointError(.image, "pstree.img: pid \(image.pid) has parent \(image.entry.ppid), which is not in the tree")
            }
            if image.entry.sid == image.entry.pid && !(shellJob && image.pid == root.pid && !pids.contains(Int32(image.entry.sid))) {
                try me.call("setsid", SyscallNumber.setsid)
            }
            for child in images.processes where Int32(child.entry.ppid) == image.pid && child.pid != root.pid {
                try me.createChild(pid: child.pid)
                created.append(child.pid)
                let task = try RestoredProcess(image: child, stub: stub)
                byPid[child.pid] = task
                ordered.append(task)
            }
        }
        // Group leaders first, then the members join them.
        let byLeader = ordered.sorted { ($0.image.entry.pgid == $0.image.entry.pid ? 0 : 1) < ($1.image.entry.pgid == $1.image.entry.pid ? 0 : 1) }
        for p in byLeader where pids.contains(Int32(p.image.entry.pgid)) && p.image.entry.sid != p.image.entry.pid {
            try p.call("setpgid", SyscallNumber.setpgid, 0, UInt64(p.image.entry.pgid))
        }
        return ordered
    }

    private static func kill(_ tids: [Int32]) {
        for tid in tids { Glibc.kill(tid, SIGKILL) }
        for tid in tids { _ = try? TaskEvent.wait(tid) }
    }
}

extension RestoredProcess {
    /// No signal may be delivered while the process is rebuilt; the dumped masks come last.
    func blockSignals() throws {
        for tid in threads { try Ptrace(tid).setSigmask(~UInt64(0)) }
    }
}
