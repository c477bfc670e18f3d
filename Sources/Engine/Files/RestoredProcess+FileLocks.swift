import Foundation
import LinuxKernel
import Images
import ProcFS

extension RestoredProcess {
    private static let fOFDSetlk: UInt64 = 37
    private static let fSetLease: UInt64 = 1024

    /// The file locks this process held, taken again on its restored fds: flock(2) for
    /// flock locks, fcntl F_SETLK for POSIX, F_OFD_SETLK for OFD locks, F_SETLEASE for
    /// leases. Never waits: a
    /// lock someone else holds now fails the restore, naming the file.
    func restoreFileLocks(_ locks: [FileLockEntry]) throws {
        for l in locks where l.pid == pid {
            let what = "\(l.type == UInt32(F_RDLCK) ? "read" : "write") lock on fd \(l.fd)"
            let r: Int64
            if l.flag & FileLockFlags.flock != 0 {
                let op = (l.type == UInt32(F_RDLCK) ? LOCK_SH : LOCK_EX) | LOCK_NB
                r = try callRaw(SyscallNumber.flock, [UInt64(l.fd), UInt64(op)])
            } else if l.flag & (FileLockFlags.posix | FileLockFlags.ofd) != 0 {
                // struct flock: l_type, l_whence (short), l_start, l_len (off_t), l_pid (OFD: 0)
                let lock = bytes(Int16(l.type)) + bytes(Int16(SEEK_SET)) + bytes(Int32(0)) + bytes(l.start) + bytes(l.len) + bytes(Int64(0))
                let addr = try put(lock, at: 0)
                let cmd = l.flag & FileLockFlags.ofd != 0 ? Self.fOFDSetlk : UInt64(F_SETLK)
                r = try callRaw(SyscallNumber.fcntl, [UInt64(l.fd), cmd, addr])
            } else if l.flag & FileLockFlags.lease != 0 {
                // Taken by the task itself: F_SETLEASE makes the caller the file's owner.
                r = try callRaw(SyscallNumber.fcntl, [UInt64(l.fd), Self.fSetLease, UInt64(l.type)])
            } else {
                throw CheckpointError(.image, "filelocks.img: pid \(pid) fd \(l.fd): unknown lock kind \(l.flag)")
            }
            if r == -Int64(EAGAIN) || r == -Int64(EWOULDBLOCK) || r == -Int64(EACCES) {
                let path = (try? ProcTree.link("/proc/\(hostPid)/fd/\(l.fd)")) ?? "?"
                throw CheckpointError(.busy, "pid \(pid): the \(what) (\(path)) is held by another process now")
            }
            if r < 0 { throw CheckpointError.errno("\(what) in pid \(pid)", Int32(-r)) }
        }
    }

    private func callRaw(_ nr: Int, _ args: [UInt64]) throws -> Int64 {
        try SyscallInjector(tid: hostPid, codeAddress: stub).callRaw(nr, args)
    }
}
