import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

extension FileTableDump {
    /// An epoll and every file registered in it. The registration is keyed by the fd
    /// number it was added with; the restore adds it again through that number, from the
    /// fd that holds the file then (KCMP_EPOLL_TFD tells which file a registration is).
    static func epoll(_ info: FdInfo, pid: Int32, fd: Int32, id: UInt32, flags: UInt32) throws -> EventpollFileEntry {
        var e = EventpollFileEntry()
        e.id = id; e.flags = flags; e.fown = FownEntry.none
        var seen: [Int32: UInt32] = [:]
        for t in try info.epollTargets {
            // Registrations of one fd number (dup, add, close, dup back) are told apart by their rank.
            let toff = seen[t.fd, default: 0]
            seen[t.fd] = toff + 1
            if !isRegistered(pid: pid, epoll: fd, tfd: t.fd, toff: toff, as: t.fd) {
                try checkDisplaced(t, pid: pid, epoll: fd, toff: toff)
            }
            var tfd = EventpollTfdEntry()
            tfd.id = id; tfd.tfd = UInt32(t.fd); tfd.events = t.events; tfd.data = t.data
            tfd.dev = t.sdev; tfd.inode = t.ino; tfd.pos = t.pos
            e.tfd.append(tfd)
        }
        return e
    }

    /// Whether `pid`'s fd `holder` is the file of the registration (`tfd`, rank `toff`) of its epoll.
    static func isRegistered(pid: Int32, epoll: Int32, tfd: Int32, toff: UInt32, as holder: Int32) -> Bool {
        var slot: (UInt32, UInt32, UInt32) = (UInt32(epoll), UInt32(tfd), toff)
        return withUnsafeMutablePointer(to: &slot) {
            Syscall.result(SyscallNumber.kcmp, Int(pid), Int(pid), KcmpType.epollTfd, Int(holder), Int(bitPattern: $0))
        } == .success(0)
    }

    /// A registration whose fd number was closed since. The restore finds its file as the
    /// lowest fd of the same process on the same pipe inode (EpollRestore), so that fd must
    /// be it; the image has no other way to name the file. The epoll itself does not keep
    /// the file open (its last close removes the registration), so some fd holds it; one of
    /// another process is refused, as the epoll gives no way to reach the file.
    private static func checkDisplaced(_ t: FdInfo.EpollTarget, pid: Int32, epoll: Int32, toff: UInt32) throws {
        let what = "pid \(pid) fd \(epoll): epoll watches a file registered as fd \(t.fd)"
        var st = stat()
        if fstatat(AT_FDCWD, "/proc/\(pid)/fd/\(t.fd)", &st, 0) == 0 {
            throw CheckpointError(.unsupported, "\(what), a number this process has since given to another file (not supported)")
        }
        let fds = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).compactMap { Int32($0) }.sorted()
        guard let holder = fds.first(where: { isRegistered(pid: pid, epoll: epoll, tfd: t.fd, toff: toff, as: $0) }) else {
            throw CheckpointError(.unsupported, "\(what), since closed, and no fd of this process holds that file now (another process may; not supported: no kernel interface gives the file back from the epoll)")
        }
        let sameInode = fds.first { f in
            var s = stat()
            return fstatat(AT_FDCWD, "/proc/\(pid)/fd/\(f)", &s, 0) == 0 && UInt64(s.st_ino) == t.ino && s.st_mode & S_IFMT == S_IFIFO
        }
        guard sameInode == holder else {
            throw CheckpointError(.unsupported, "\(what), since closed and held as fd \(holder), which the image cannot name (only a pipe or FIFO end that is the lowest fd on its pipe)")
        }
    }
}
