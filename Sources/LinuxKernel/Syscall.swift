import Foundation
import CShim

/// Thin wrappers over raw syscalls; every failure becomes a CheckpointError naming what was done.
public enum Syscall {
    /// Retries `body` while it fails with EINTR. `body` returns -1 and sets errno on failure.
    @discardableResult
    public static func retrying<T: BinaryInteger>(_ what: @autoclosure () -> String, _ body: () -> T) throws -> T {
        while true {
            let r = body()
            if r >= 0 { return r }
            if errno == EINTR { continue }
            throw CheckpointError.errno(what())
        }
    }

    /// A raw syscall through the shim; returns the result or throws with -result as errno.
    @discardableResult
    public static func raw(_ what: @autoclosure () -> String, _ nr: Int,
                           _ a1: Int = 0, _ a2: Int = 0, _ a3: Int = 0,
                           _ a4: Int = 0, _ a5: Int = 0, _ a6: Int = 0) throws -> Int {
        while true {
            let r = oc_syscall(nr, a1, a2, a3, a4, a5, a6)
            if r >= 0 { return r }
            if r == -Int(EINTR) { continue }
            throw CheckpointError.errno(what(), Int32(-r))
        }
    }

    /// Our own fd (close-on-exec) on the open file description behind `pid`'s `fd`
    /// (pidfd_getfd), to read a file's state (socket options, queues) from outside the task.
    public static func takeFd(pid: Int32, fd: Int32) throws -> Int32 {
        let pidfd = Int32(truncatingIfNeeded: oc_syscall(SyscallNumber.pidfdOpen, Int(pid), 0, 0, 0, 0, 0))
        if pidfd < 0 { throw CheckpointError.errno("pidfd_open of pid \(pid)", -pidfd) }
        defer { close(pidfd) }
        let r = Int32(truncatingIfNeeded: oc_syscall(SyscallNumber.pidfdGetfd, Int(pidfd), Int(fd), 0, 0, 0, 0))
        if r < 0 { throw CheckpointError.errno("pidfd_getfd of pid \(pid) fd \(fd)", -r) }
        return r
    }
}

/// x86_64 syscall numbers the engine injects or calls directly.
public enum SyscallNumber {
    public static let read = 0, write = 1, close = 3, lseek = 8, mmap = 9, mprotect = 10, munmap = 11
    public static let brk = 12, rtSigaction = 13, rtSigprocmask = 14, ioctl = 16, pread64 = 17
    public static let mremap = 25, madvise = 28, dup = 32, getitimer = 36, setitimer = 38
    public static let getpid = 39, exit = 60, kill = 62, fcntl = 72, chdir = 80, fchdir = 81
    public static let umask = 95, setpgid = 109, setsid = 112, setresuid = 117, setresgid = 119
    public static let setgroups = 116, capset = 126, rtSigqueueinfo = 129, sigaltstack = 131
    public static let personality = 135, prctl = 157, archPrctl = 158, chroot = 161
    public static let setTidAddress = 218, exitGroup = 231, openat = 257, rtTgsigqueueinfo = 297
    public static let setRobustList = 273, getRobustList = 274, dup3 = 292, prlimit64 = 302
    public static let kcmp = 312, seccomp = 317, rseq = 334, pidfdOpen = 434, clone3 = 435
    public static let closeRange = 436, pidfdGetfd = 438
}
