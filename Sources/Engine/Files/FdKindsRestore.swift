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
    var pendingSeals: [(fd: Int32, seals: Int32, name: String)] = []
    /// Owners, signals and O_ASYNC to set once every thread exists (FileOwner).
    var pendingOwners: [(fd: Int32, fown: FownEntry, what: String)] = []
    var armedAsync: Set<UInt32> = []   // file ids whose O_ASYNC a task has set
    /// The pages images, mapped on the first memfd that has contents.
    var pages: PagesImage?

    deinit { for fd in memfdObjects.values { close(fd) } }
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
        default: throw CheckpointError(.unsupported, "\(what) cannot be restored yet")
        }
        return fd
    }

    /// The pidfd's process, reopened by its restored pid.
    func openPidfd(_ p: PidfdEntry, _ what: String) throws -> Int32 {
        guard let host = kinds.hostPids[p.nspid] else {
            throw CheckpointError(.image, "\(what): pidfd of pid \(p.nspid), which is not in \(ImageName.pstree)")
        }
        return try Syscall.rawFd("pidfd_open of restored pid \(p.nspid) for \(what)", SyscallNumber.pidfdOpen, Int(host), Int(p.flags & UInt32(O_NONBLOCK)))
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
