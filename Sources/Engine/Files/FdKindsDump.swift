import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

/// What the fd kinds beyond files and pipes add to a dump: memfd inodes (memfd.img) and
/// their contents (copied as shared memory), and the tree's pids for pidfds.
final class FdKindsDump {
    /// Host pid -> pid in the tree's own namespace: a pidfd may only name one of these.
    var treePids: [Int32: Int32] = [:]
    /// Host tid -> tid in the tree's namespace, for every thread (owners of files).
    var treeTids: [Int32: Int32] = [:]
    var memfdInodes: [MemfdInodeEntry] = []
    /// memfd contents to copy while the tree is still frozen: the object's path, its shmid.
    var memfdContents: [(path: String, shmid: UInt64)] = []
    var memfdInodeIDs: [UInt64: UInt32] = [:]  // inode number -> memfd inode id
}

extension FileTableDump {
    /// The files.img entry of an eventfd, signalfd, timerfd, epoll, inotify, fanotify,
    /// memfd, pidfd or BPF map; nil when `link` names none of them.
    func kindEntry(link: String, pid: Int32, fd: Int32, id: UInt32, info: FdInfo, st: stat) throws -> FileEntry? {
        let at = "pid \(pid) fd \(fd)"
        let flags = info.flags & ~UInt32(O_CLOEXEC)
        var f = FileEntry()
        f.id = id
        switch link {
        case "anon_inode:[eventfd]": f.type = .eventfd; f.efd = try Self.eventfd(info, id: id, flags: flags, at: at)
        case "anon_inode:[signalfd]": f.type = .signalfd; f.sgfd = try Self.signalfd(info, id: id, flags: flags, at: at)
        case "anon_inode:[timerfd]": f.type = .timerfd; f.tfd = try Self.timerfd(info, id: id, flags: flags, at: at)
        case "anon_inode:[eventpoll]": f.type = .eventpoll; f.epfd = try Self.epoll(info, pid: pid, fd: fd, id: id, flags: flags)
        case "anon_inode:inotify": f.type = .inotify; f.ify = try Self.inotify(info, pid: pid, fd: fd, id: id, flags: flags)
        case "anon_inode:[fanotify]": f.type = .fanotify; f.ffy = try Self.fanotify(info, pid: pid, fd: fd, id: id, flags: flags)
        case "anon_inode:[pidfd]": f.type = .pidfd; f.pidfd = try pidfd(info, id: id, flags: flags, at: at)
        case "anon_inode:bpf-map": f.type = .bpfmap; f.bpf = try bpfMap(pid: pid, fd: fd, id: id, info: info, flags: flags)
        case _ where link.hasPrefix("anon_inode:bpf") || link == "anon_inode:btf": throw Self.refuseBpfObject(link, at: at)
        default:
            guard link.hasPrefix("/memfd:"), st.st_nlink == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
            f.type = .memfd
            f.memfd = try memfd(link: link, pid: pid, fd: fd, id: id, info: info, st: st)
        }
        return f
    }

    /// The memfd inodes, beside files.img (their contents go with the memory images).
    func writeKinds(to images: ImageDirectory) throws {
        if !kinds.memfdInodes.isEmpty { try images.write(.memfd, kinds.memfdInodes) }
        try bpfMaps.write(to: images)
    }

    /// Bytes queued for reading on a notification fd (events the restore cannot recreate),
    /// asked of the very file through a copy of it (pidfd_getfd): an anonymous inode cannot
    /// be reopened through /proc.
    static func queuedBytes(pid: Int32, fd: Int32) throws -> Int32 {
        let ours = try Syscall.takeFd(pid: pid, fd: fd)
        defer { close(ours) }
        var n: Int32 = 0
        if ioctl(ours, UInt(FIONREAD), &n) != 0 { throw CheckpointError.errno("FIONREAD on pid \(pid) fd \(fd)") }
        return n
    }
}
