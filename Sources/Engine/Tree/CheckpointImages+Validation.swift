import Foundation
import LinuxKernel
import Images
import ProcFS
import SwiftProtobuf

extension ImageDirectory {
    /// Reads and checks every image a restore would, creating nothing: the checks a
    /// restore makes before its first task (the fuzz target's way in).
    public func validateForRestore() throws { _ = try CheckpointImages(dir: self) }
}

/// What the kernel allows a dumped task to have had: anything beyond cannot come from a
/// real process, and would trap a conversion to Int32 or Int further on.
enum ImageLimits {
    /// PID_MAX_LIMIT on 64-bit kernels.
    static let pid: UInt32 = 4 << 20
    /// fs.nr_open: no fd can be at or above it.
    static let fd: UInt32 = {
        let text = (try? readProcFile("/proc/sys/fs/nr_open"))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return text.flatMap { UInt32($0) }.map { min($0, UInt32(Int32.max)) } ?? 1 << 20
    }()
    static let page: UInt64 = 4096
    static let signals = 64
}

extension CheckpointImages {
    /// The one record of an image that holds exactly one: bytes after it are damage, as
    /// CRIU's format has nothing there.
    static func readSole<M: SwiftProtobuf.Message>(_ dir: ImageDirectory, _ image: ImageName, as type: M.Type) throws -> M {
        var r = try dir.reader(image)
        do {
            let m = try r.one(type)
            guard r.atEnd else { throw ImageError(r.path, "\(r.remaining) bytes after its one \(M.protoMessageName) record") }
            return m
        } catch let e as ImageError { throw e.checkpointError }
    }

    /// One pstree.img entry: pids the kernel could have given, the leader among its threads,
    /// its parent listed before it (restore forks each process from its parent), unless it
    /// is the root.
    static func checkPstreeEntry(_ e: PstreeEntry, parents earlier: Set<UInt32>?, _ dir: ImageDirectory) throws {
        let image = dir.file(.pstree)
        for (field, value) in [("pid", e.pid), ("ppid", e.ppid), ("pgid", e.pgid), ("sid", e.sid)] where value > ImageLimits.pid {
            throw CheckpointError(.image, "image \(image): \(field) \(value) of pid \(e.pid) is beyond the kernel's pid limit \(ImageLimits.pid)")
        }
        guard e.pid > 0 else { throw CheckpointError(.image, "image \(image): an entry with pid 0") }
        if let earlier, !earlier.contains(e.ppid) {
            throw CheckpointError(.image, "image \(image): ppid \(e.ppid) of pid \(e.pid) names no process listed before it")
        }
        if e.threads == [0] || e.threads.isEmpty { return }   // a zombie, as CRIU lists one
        if let tid = e.threads.first(where: { $0 == 0 || $0 > ImageLimits.pid }) {
            throw CheckpointError(.image, "image \(image): thread \(tid) of pid \(e.pid) is not a pid the kernel gives")
        }
        guard e.threads.contains(e.pid) else {
            throw CheckpointError(.image, "image \(image): the threads of pid \(e.pid) leave out its leader")
        }
    }

    /// The cores of one process agree with its pstree entry: the leader's holds the task
    /// core, in a state restore knows; a thread's holds none (CRIU writes it only for the
    /// leader), so a tid moved between processes or a process listed as a thread shows.
    static func checkCores(_ cores: [Int32: CoreEntry], pid: Int32, _ dir: ImageDirectory) throws {
        for (tid, core) in cores where tid != pid && core.hasTc {
            throw CheckpointError(.image, "image \(dir.file(.core(tid))): thread \(tid) of pid \(pid) carries a task core, as only a process leader's does")
        }
        guard let main = cores[pid], main.hasTc else { return }
        let known = [TaskState.alive, TaskState.dead, TaskState.stopped, TaskState.zombie]
        guard known.contains(main.tc.taskState) else {
            throw CheckpointError(.image, "image \(dir.file(.core(pid))): task_state \(main.tc.taskState) is none of alive, stopped, zombie, dead")
        }
        guard main.tc.sigactions.count <= ImageLimits.signals else {
            throw CheckpointError(.image, "image \(dir.file(.core(pid))): \(main.tc.sigactions.count) sigactions, more than the \(ImageLimits.signals) signals")
        }
    }

    /// ids-PID.img and the core's ids (CRIU 4 keeps them there) name the same objects.
    static func checkIds(_ ids: TaskKobjIdsEntry, core: CoreEntry, pid: Int32, _ dir: ImageDirectory) throws {
        guard core.hasIds else { return }
        let fields: [(String, KeyPath<TaskKobjIdsEntry, Bool>, KeyPath<TaskKobjIdsEntry, UInt32>)] = [
            ("files_id", \.hasFilesID, \.filesID), ("vm_id", \.hasVmID, \.vmID), ("fs_id", \.hasFsID, \.fsID),
            ("sighand_id", \.hasSighandID, \.sighandID), ("pid_ns_id", \.hasPidNsID, \.pidNsID),
            ("net_ns_id", \.hasNetNsID, \.netNsID), ("ipc_ns_id", \.hasIpcNsID, \.ipcNsID),
            ("uts_ns_id", \.hasUtsNsID, \.utsNsID), ("mnt_ns_id", \.hasMntNsID, \.mntNsID),
            ("user_ns_id", \.hasUserNsID, \.userNsID),
        ]
        for (name, has, value) in fields where ids[keyPath: has] && core.ids[keyPath: has] && ids[keyPath: value] != core.ids[keyPath: value] {
            throw CheckpointError(.image, "image \(dir.file(.ids(pid))): \(name) \(ids[keyPath: value]) disagrees with \(core.ids[keyPath: value]) in \(ImageName.core(pid))")
        }
    }

    /// The fd table of one process: fds the kernel could have, each once.
    static func checkFds(_ fds: [FdinfoEntry], filesID: UInt32, _ dir: ImageDirectory) throws {
        var seen = Set<UInt32>()
        for fd in fds {
            guard fd.fd < ImageLimits.fd else {
                throw CheckpointError(.image, "image \(dir.file(.fdinfo(filesID))): fd \(Int32(bitPattern: fd.fd)) is outside 0..<\(ImageLimits.fd) (fs.nr_open)")
            }
            guard seen.insert(fd.fd).inserted else {
                throw CheckpointError(.image, "image \(dir.file(.fdinfo(filesID))): fd \(fd.fd) appears twice")
            }
        }
    }

    /// File mappings: an offset and length that fit, naming a file files.img has.
    static func checkMappings(_ p: Process, files: [UInt32: FileEntry], _ dir: ImageDirectory) throws {
        let image = dir.file(.mm(p.pid))
        for v in p.mm.vmas where v.status & (VmaStatus.filePrivate | VmaStatus.fileShared | VmaStatus.memfd) != 0 {
            let (end, overflow) = v.pgoff.addingReportingOverflow(v.end - v.start)
            guard !overflow, end <= UInt64(Int.max), v.pgoff % ImageLimits.page == 0 else {
                throw CheckpointError(.image, "image \(image): file offset \(v.pgoff.hex) of the mapping at \(v.start.hex) does not fit")
            }
            guard v.shmid <= UInt64(UInt32.max), files[UInt32(v.shmid)] != nil else {
                throw CheckpointError(.image, "image \(image): the mapping at \(v.start.hex) names file id \(v.shmid), missing from \(ImageName.files)")
            }
        }
        if p.mm.hasExeFileID && files[p.mm.exeFileID] == nil {
            throw CheckpointError(.image, "image \(image): exe_file_id \(p.mm.exeFileID) is missing from \(ImageName.files)")
        }
        for (field, id) in [("cwd_id", p.fs.cwdID), ("root_id", p.fs.rootID)] where files[id] == nil {
            throw CheckpointError(.image, "image \(dir.file(.fs(p.pid))): \(field) \(id) is missing from \(ImageName.files)")
        }
    }

    /// files.img: each id once, each entry carrying the part its type names.
    static func readFiles(_ dir: ImageDirectory) throws -> [UInt32: FileEntry] {
        var files: [UInt32: FileEntry] = [:]
        for f in try dir.read(.files, as: FileEntry.self) {
            guard files.updateValue(f, forKey: f.id) == nil else {
                throw CheckpointError(.image, "image \(dir.file(.files)): file id \(f.id) appears twice")
            }
            guard f.hasPart else {
                throw CheckpointError(.image, "image \(dir.file(.files)): file id \(f.id) of type \(f.type) has no \(f.type) entry")
            }
            for (field, value) in f.intFields where value > UInt32(Int32.max) {
                throw CheckpointError(.image, "image \(dir.file(.files)): \(field) \(value) of file id \(f.id) is beyond an int")
            }
        }
        return files
    }

    /// Runs of pages in ascending order, apart, each fitting the address space.
    static func checkRuns(_ runs: [PagemapEntry], image: String) throws {
        var previousEnd: UInt64 = 0
        for run in runs {
            let (length, overflow) = run.nrPages.multipliedReportingOverflow(by: ImageLimits.page)
            let (end, past) = run.vaddr.addingReportingOverflow(length)
            guard !overflow, !past, end <= UInt64(Int.max), run.vaddr % ImageLimits.page == 0, run.nrPages > 0 else {
                throw CheckpointError(.image, "image \(image): \(run.nrPages) pages at \(run.vaddr.hex) do not fit in the address space")
            }
            guard run.vaddr >= previousEnd else {
                throw CheckpointError(.image, "image \(image): pages at \(run.vaddr.hex) overlap or precede the run before")
            }
            previousEnd = end
        }
    }

    /// Shared memory and memfd objects: their runs bounded, their sizes ones a file can have.
    func checkSharedMemory() throws {
        for (shmid, s) in shmem { try Self.checkRuns(s.runs, image: dir.file(.pagemapShmem(shmid))) }
        for m in memfds.values where m.size > UInt64(Int64.max) {
            throw CheckpointError(.image, "image \(dir.file(.memfd)): memfd \(m.name) of \(m.size) bytes, beyond any file's size")
        }
    }
}

extension FileEntry {
    /// The fields restore hands the kernel as a C int (socket family, type and protocol,
    /// open flags, epoll target fds).
    var intFields: [(String, UInt32)] {
        var fields: [(String, UInt32)] = []
        if hasIsk { fields += [("family", isk.family), ("type", isk.type), ("proto", isk.proto), ("flags", isk.flags)] }
        if hasUsk { fields += [("type", usk.type), ("flags", usk.flags)] }
        if hasPipe { fields.append(("flags", pipe.flags)) }
        if hasEpfd { fields += epfd.tfd.map { ("tfd", $0.tfd) } }
        return fields
    }

    /// Whether the entry holds the message its type names (reg for .reg, pipe for .pipe...).
    var hasPart: Bool {
        switch type {
        case .reg: return hasReg
        case .pipe: return hasPipe
        case .fifo: return hasFifo
        case .inetsk: return hasIsk
        case .unixsk: return hasUsk
        case .eventfd: return hasEfd
        case .eventpoll: return hasEpfd
        case .inotify: return hasIfy
        case .signalfd: return hasSgfd
        case .packetsk: return hasPsk
        case .tty: return hasTty
        case .fanotify: return hasFfy
        case .netlinksk: return hasNlsk
        case .ns: return hasNsf
        case .tunf: return hasTunf
        case .ext: return hasExt
        case .timerfd: return hasTfd
        case .memfd: return hasMemfd
        case .bpfmap: return hasBpf
        case .pidfd: return hasPidfd
        default: return true
        }
    }
}
