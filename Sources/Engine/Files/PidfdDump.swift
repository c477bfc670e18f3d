import Foundation
import LinuxKernel
import Images
import ProcFS

extension FileTableDump {
    /// A pidfd of a process of the dumped tree; its pid is recorded as the tree sees it.
    func pidfd(_ info: FdInfo, id: UInt32, flags: UInt32, at: String) throws -> PidfdEntry {
        guard let pid = info.pidfdPid else { throw CheckpointError(.kernel, "\(at): pidfd without a Pid line in fdinfo") }
        if pid == 0 {
            throw CheckpointError(.unsupported, "\(at): pidfd of a process outside the dumper's pid namespace")
        }
        if flags & UInt32(O_EXCL) != 0 {
            throw CheckpointError(.unsupported, "\(at): pidfd of a thread (PIDFD_THREAD) is not supported")
        }
        // Exited and reaped: CRIU's "dead" pidfd, nspid -1; pidfds of one such process share an inode.
        guard pid > 0 else {
            var p = PidfdEntry()
            p.id = id; p.ino = UInt32(truncatingIfNeeded: info.ino); p.flags = flags & ~UInt32(O_RDWR)
            p.nspid = -1; p.fown = FownEntry.none
            return p
        }
        guard let vpid = kinds.treePids[pid] else {
            throw CheckpointError(.unsupported, "\(at): pidfd of pid \(pid), which is outside the dumped tree")
        }
        var p = PidfdEntry()
        p.id = id; p.ino = UInt32(truncatingIfNeeded: info.ino); p.flags = flags & ~UInt32(O_RDWR)
        p.nspid = vpid; p.fown = FownEntry.none
        return p
    }
}
