import Foundation
import LinuxKernel
import CShim
import Images

extension RestoreResources {
    /// An empty epoll; its files are added from inside the task that registered them
    /// (RestoredProcess.registerEpollTargets), since registrations are keyed by its fd numbers.
    static func openEpoll(_ e: EventpollFileEntry, _ what: String) throws -> Int32 {
        let fd = try Syscall.rawFd("epoll_create1 for \(what)", SyscallNumber.epollCreate1, Int(O_CLOEXEC))
        if e.flags & UInt32(O_NONBLOCK) != 0 { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
        return fd
    }

    /// The first process (in pstree order) that holds epoll `id`: the dump checked its
    /// registrations against that process's fd table.
    func epollOwner(_ id: UInt32) -> Int32? {
        images.processes.first { p in !p.isZombie && p.fds.contains { $0.id == id } }?.pid
    }
}

extension RestoredProcess {
    /// epoll_ctl(ADD) of every file of every epoll this process owns, through its own fd
    /// numbers, once its whole fd table is in place. An epoll inside an epoll gets its
    /// own files first, so its readiness reaches the outer one.
    func registerEpollTargets(resources: RestoreResources) throws {
        let byFd = Dictionary(image.fds.map { (Int32($0.fd), $0.id) }, uniquingKeysWith: { a, _ in a })
        var epolls: [(fd: Int32, entry: EventpollFileEntry)] = []
        var seen: Set<UInt32> = []
        for e in image.fds {
            guard let f = resources.images.files[e.id], f.type == .eventpoll, seen.insert(e.id).inserted,
                  resources.epollOwner(e.id) == pid else { continue }
            epolls.append((Int32(e.fd), f.epfd))
        }
        func depth(_ entry: EventpollFileEntry, _ level: Int = 0) -> Int {
            guard level < 8 else { return level }  // the kernel refuses deeper nesting
            return entry.tfd.compactMap { t in
                byFd[Int32(t.tfd)].flatMap { resources.images.files[$0] }.flatMap { $0.type == .eventpoll ? depth($0.epfd, level + 1) + 1 : nil }
            }.max() ?? 0
        }
        for (epfd, entry) in epolls.sorted(by: { depth($0.entry) < depth($1.entry) }) {
            for t in entry.tfd {
                let event = try put(bytes(t.events) + bytes(t.data), at: 0)  // struct epoll_event is packed
                let add = "epoll_ctl(\(epfd), ADD, \(t.tfd))"
                if byFd[Int32(t.tfd)] != nil {
                    try call(add, SyscallNumber.epollCtl, UInt64(epfd), 1 /* EPOLL_CTL_ADD */, UInt64(t.tfd), event)
                    continue
                }
                // Closed since it was added: the file is lent the number it was registered by.
                guard let holder = displacedHolder(t, byFd: byFd, resources: resources) else {
                    throw CheckpointError(.image, "pid \(pid): epoll fd \(epfd) watches fd \(t.tfd), which fdinfo-\(pid).img does not have, nor a pipe of inode \(t.inode)")
                }
                try call("dup3(\(holder), \(t.tfd)) for \(add)", SyscallNumber.dup3, UInt64(holder), UInt64(t.tfd), UInt64(O_CLOEXEC))
                defer { _ = try? callRaw(on: nil, SyscallNumber.close, [UInt64(t.tfd)]) }
                try call(add, SyscallNumber.epollCtl, UInt64(epfd), 1 /* EPOLL_CTL_ADD */, UInt64(t.tfd), event)
            }
        }
    }
}

extension RestoredProcess {
    /// The lowest fd of this process on the pipe the registration watched (the dump made
    /// sure it is the registration's file).
    func displacedHolder(_ t: EventpollTfdEntry, byFd: [Int32: UInt32], resources: RestoreResources) -> Int32? {
        byFd.keys.sorted().first { fd in
            guard let id = byFd[fd], let f = resources.images.files[id] else { return false }
            switch f.type {
            case .pipe: return f.pipe.pipeID == UInt32(truncatingIfNeeded: t.inode)
            case .fifo: return f.fifo.pipeID == UInt32(truncatingIfNeeded: t.inode)
            default: return false
            }
        }
    }
}
