import Foundation
import LinuxKernel
import Images

extension RestoreResources {
    /// The file of a file mapping, opened for the access its vma records (fdflags, as CRIU
    /// writes them), which can be more than the file's own entry gives: CRIU saves a
    /// shared anonymous mapping as a memfd whose files.img entry is read-only. `owned`
    /// fds are the caller's to close.
    func mappingFd(for vma: VmaEntry) throws -> (fd: Int32, owned: Bool) {
        let fd = try fd(for: UInt32(truncatingIfNeeded: vma.shmid))
        guard vma.hasFdflags else { return (fd, false) }
        let want = Int32(bitPattern: vma.fdflags) & O_ACCMODE
        let have = fcntl(fd, F_GETFL) & O_ACCMODE
        if have == want || have == O_RDWR { return (fd, false) }
        let reopened = open("/proc/self/fd/\(fd)", (want == O_RDONLY ? O_RDWR : want) | O_CLOEXEC)
        if reopened < 0 { throw CheckpointError.errno("reopen file \(vma.shmid) for the mapping at \(vma.start.hex)") }
        return (reopened, true)
    }
}
