import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

extension FileTableDump {
    /// An epoll and every file registered in it. The registration is keyed by the fd
    /// number it was added with, so that number must still name the same file in this
    /// process: the restore adds it again through that number (KCMP_EPOLL_TFD checks it).
    static func epoll(_ info: FdInfo, pid: Int32, fd: Int32, id: UInt32, flags: UInt32) throws -> EventpollFileEntry {
        var e = EventpollFileEntry()
        e.id = id; e.flags = flags; e.fown = FownEntry.none
        for t in try info.epollTargets {
            var slot: (UInt32, UInt32, UInt32) = (UInt32(fd), UInt32(t.fd), 0)
            let same = withUnsafeMutablePointer(to: &slot) {
                Syscall.result(SyscallNumber.kcmp, Int(pid), Int(pid), KcmpType.epollTfd, Int(t.fd), Int(bitPattern: $0))
            }
            if same != .success(0) {
                throw CheckpointError(.unsupported, "pid \(pid) fd \(fd): epoll watches a file registered as fd \(t.fd), which this process has since closed or replaced (not supported)")
            }
            var tfd = EventpollTfdEntry()
            tfd.id = id; tfd.tfd = UInt32(t.fd); tfd.events = t.events; tfd.data = t.data
            tfd.dev = t.sdev; tfd.inode = t.ino; tfd.pos = t.pos
            e.tfd.append(tfd)
        }
        return e
    }
}
