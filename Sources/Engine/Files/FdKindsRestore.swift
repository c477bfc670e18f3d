import Foundation
import LinuxKernel
import CShim
import Images

/// State of the fd kinds beyond files and pipes while a restore runs: memfd objects
/// (one per inode, shared by its fds and mappings), seals still to add, and the host pid
/// of each restored process (for pidfds).
final class FdKindsRestore {
    /// Pid in the tree's namespace -> pid as the restorer sees it.
    var hostPids: [Int32: Int32] = [:]
    var memfdObjects: [UInt64: Int32] = [:]   // memfd inode id -> our fd (memfd_create)
    var bpfMaps: [UInt32: (fd: Int32, id: UInt32)] = [:]   // dumped map id -> our fd on the new map, its id
    var pendingSeals: [(fd: Int32, seals: Int32, name: String)] = []
    /// Pidfds of exited and reaped processes of ours not yet handed out, by file id.
    var deadPidfds: [UInt32: Int32] = [:]
    /// Owners, signals and O_ASYNC to set once every thread exists (FileOwner).
    var pendingOwners: [(fd: Int32, fown: FownEntry, what: String)] = []
    var armedAsync: Set<UInt32> = []   // file ids whose O_ASYNC a task has set
    /// The pages images, mapped on the first memfd that has contents.
    var pages: PagesImage?

    deinit {
        for fd in memfdObjects.values { close(fd) }
        for m in bpfMaps.values { close(m.fd) }
        for fd in deadPidfds.values { close(fd) }
    }
}

extension RestoreResources {
    /// Our fd for a file of the kinds beyond regular files and pipes.
    func openKind(_ file: FileEntry) throws -> Int32 {
        let what = "file id \(file.id) (\(file.type))"
        let fd: Int32
        switch file.type {
        case .eventfd: fd = try Self.openEventfd(file.efd, what)
        case .signalfd: fd = try Self.openSignalfd(file.sgfd, what)
        case .timerfd: fd = try Self.openTimerfd(file.tfd, what)
        case .eventpoll: fd = try Self.openEpoll(file.epfd, what)
        case .inotify: fd = try openInotify(file.ify, what)
        case .fanotify: fd = try openFanotify(file.ffy, what)
        case .memfd: fd = try openMemfd(file.memfd, what)
        case .pidfd: fd = try openPidfd(file.pidfd, what)
        case .ns: fd = try openNamespaceFile(file.nsf, what)
        case .bpfmap: fd = try openBpfMap(file.bpf, what)
        default: throw CheckpointError(.unsupported, "\(what) cannot be restored yet")
        }
        return fd
    }

    /// The pidfd's process, reopened by its restored pid.
    func openPidfd(_ p: PidfdEntry, _ what: String) throws -> Int32 {
        if p.nspid == -1 { return try deadPidfd(p, what) }
        guard let host = kinds.hostPids[p.nspid] else {
            throw CheckpointError(.image, "\(what): pidfd of pid \(p.nspid), which is not in \(ImageName.pstree)")
        }
        return try Syscall.rawFd("pidfd_open of restored pid \(p.nspid) for \(what)", SyscallNumber.pidfdOpen, Int(host), Int(p.flags & UInt32(O_NONBLOCK)))
    }

    /// A pidfd of a process that has exited and been reaped, as the dumped one was: one
    /// such process (it runs /bin/true) per dumped inode, as CRIU makes a temporary one,
    /// and one pidfd_open per description of it (each keeps its own O_NONBLOCK).
    private func deadPidfd(_ p: PidfdEntry, _ what: String) throws -> Int32 {
        if let fd = kinds.deadPidfds[p.id] { kinds.deadPidfds[p.id] = nil; return fd }
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("true"), nil]
        defer { free(argv[0]) }
        let err = posix_spawn(&pid, "/bin/true", nil, nil, argv, nil)
        if err != 0 { throw CheckpointError.errno("spawn a process to die for \(what)", Errno(err)) }
        defer { _ = Syscall.valueOrErrno { waitpid(pid, nil, 0) } }
        // Until reaped it can still be opened, exited or not.
        for f in images.files.values where f.type == .pidfd && f.pidfd.nspid == -1 && f.pidfd.ino == p.ino {
            kinds.deadPidfds[f.id] = try Syscall.rawFd("pidfd_open of the process made for \(what)", SyscallNumber.pidfdOpen,
                                                         Int(pid), Int(f.pidfd.flags & UInt32(O_NONBLOCK)))
        }
        guard let fd = kinds.deadPidfds.removeValue(forKey: p.id) else {
            throw CheckpointError(.invalidState, "\(what): no pidfd was made for it")
        }
        return fd
    }

    /// Seals go on last, once every mapping exists: F_SEAL_FUTURE_WRITE forbids new
    /// writable mappings, F_SEAL_WRITE any write of the contents.
    func sealMemfds() throws {
        for s in kinds.pendingSeals where fcntl(s.fd, FileControl.addSeals, s.seals) != 0 {
            throw CheckpointError.errno("add seals \(s.seals) to memfd \(s.name)")
        }
        kinds.pendingSeals = []
    }
}
