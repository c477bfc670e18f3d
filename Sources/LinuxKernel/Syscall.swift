import Foundation
import CShim

/// Thin wrappers over raw syscalls; every failure becomes a CheckpointError naming what was
/// done and carrying the errno. EINTR is retried here, in `valueOrErrno` and `result`, and
/// nowhere else.
public enum Syscall {
    /// `body`'s result, retried while it fails with EINTR; `body` returns -1 (any negative)
    /// and sets errno on failure, as libc calls do.
    public static func valueOrErrno<T: BinaryInteger>(_ body: () -> T) -> Result<T, Errno> {
        while true {
            let r = body()
            if r >= 0 { return .success(r) }
            let err = Errno.current
            if err != .EINTR { return .failure(err) }
        }
    }

    /// Retries `body` while it fails with EINTR; throws what failed with its errno.
    @discardableResult
    public static func retrying<T: BinaryInteger>(_ what: @autoclosure () -> String, _ body: () -> T) throws -> T {
        switch valueOrErrno(body) {
        case .success(let r): return r
        case .failure(let err): throw CheckpointError.errno(what(), err)
        }
    }

    /// A raw syscall through the shim, retried while it fails with EINTR: the result or
    /// the errno. For probes and callers that branch on the errno before throwing.
    public static func result(_ nr: Int, _ a1: Int = 0, _ a2: Int = 0, _ a3: Int = 0,
                              _ a4: Int = 0, _ a5: Int = 0, _ a6: Int = 0) -> Result<Int, Errno> {
        while true {
            let r = oc_syscall(nr, a1, a2, a3, a4, a5, a6)
            if r >= 0 { return .success(r) }
            // Above -4096 is an errno; below is a value (an address) the kernel returned.
            if r < -4095 { return .success(r) }
            if r != -Int(EINTR) { return .failure(Errno(Int32(-r))) }
        }
    }

    /// A raw syscall through the shim; returns the result or throws what failed with its errno.
    @discardableResult
    public static func raw(_ what: @autoclosure () -> String, _ nr: Int,
                           _ a1: Int = 0, _ a2: Int = 0, _ a3: Int = 0,
                           _ a4: Int = 0, _ a5: Int = 0, _ a6: Int = 0) throws -> Int {
        switch result(nr, a1, a2, a3, a4, a5, a6) {
        case .success(let r): return r
        case .failure(let err): throw CheckpointError.errno(what(), err)
        }
    }

    /// `raw` for calls that return a file descriptor.
    public static func rawFd(_ what: @autoclosure () -> String, _ nr: Int,
                             _ a1: Int = 0, _ a2: Int = 0, _ a3: Int = 0,
                             _ a4: Int = 0, _ a5: Int = 0, _ a6: Int = 0) throws -> Int32 {
        Int32(truncatingIfNeeded: try raw(what(), nr, a1, a2, a3, a4, a5, a6))
    }

    /// The calling thread's id (gettid, which glibc does not export to Swift).
    public static func gettid() -> Int32 {
        Int32(truncatingIfNeeded: oc_syscall(SyscallNumber.gettid, 0, 0, 0, 0, 0, 0))
    }

    /// Both ends of a new pipe, close-on-exec, plus `flags` (O_NONBLOCK...): [read, write].
    public static func pipe(_ what: @autoclosure () -> String, flags: Int32 = 0) throws -> [Int32] {
        var ends: [Int32] = [-1, -1]
        try ends.withUnsafeMutableBufferPointer {
            _ = try raw(what(), SyscallNumber.pipe2, Int(bitPattern: $0.baseAddress), Int(O_CLOEXEC | flags))
        }
        return ends
    }

    /// openat2(2) of `path` under the directory `dirfd`, resolved as `resolve` says
    /// (ResolveFlag: inside a root, without magic links): the fd or the errno.
    public static func openat2(_ dirfd: Int32, _ path: String, flags: Int32, mode: mode_t = 0,
                               resolve: UInt64) -> Result<Int32, Errno> {
        // struct open_how: flags, mode, resolve (24 bytes).
        var how: (UInt64, UInt64, UInt64) = (UInt64(UInt32(bitPattern: flags)), UInt64(mode), resolve)
        return path.withCString { p in
            withUnsafeMutablePointer(to: &how) {
                result(SyscallNumber.openat2, Int(dirfd), Int(bitPattern: p), Int(bitPattern: $0), 24)
            }
        }.map { Int32(truncatingIfNeeded: $0) }
    }

    /// Our own fd (close-on-exec) on the open file description behind `pid`'s `fd`
    /// (pidfd_getfd), to read a file's state (socket options, queues) from outside the task.
    public static func takeFd(pid: Int32, fd: Int32) throws -> Int32 {
        let pidfd = try rawFd("pidfd_open of pid \(pid)", SyscallNumber.pidfdOpen, Int(pid))
        defer { close(pidfd) }
        return try rawFd("pidfd_getfd of pid \(pid) fd \(fd)", SyscallNumber.pidfdGetfd, Int(pidfd), Int(fd))
    }
}

extension Result where Failure == Errno {
    /// The value, or a CheckpointError saying what failed with the errno.
    public func get(_ what: @autoclosure () -> String) throws -> Success {
        switch self {
        case .success(let v): return v
        case .failure(let err): throw CheckpointError.errno(what(), err)
        }
    }
}

/// x86_64 syscall numbers the engine calls directly or injects into a task: every number
/// the code uses, here and nowhere else.
public enum SyscallNumber {
    public static let read = 0, write = 1, close = 3, lseek = 8, mmap = 9, mprotect = 10, munmap = 11
    public static let brk = 12, rtSigaction = 13, rtSigprocmask = 14, ioctl = 16, pread64 = 17
    public static let mremap = 25, madvise = 28, shmget = 29, shmat = 30, shmctl = 31, dup = 32
    public static let getitimer = 36, setitimer = 38, getpid = 39, exit = 60, kill = 62
    public static let semget = 64, semctl = 66, shmdt = 67, msgget = 68, msgsnd = 69, msgrcv = 70
    public static let msgctl = 71, fcntl = 72, flock = 73, chdir = 80, fchdir = 81, umask = 95
    public static let setpgid = 109, setsid = 112, setgroups = 116, setresuid = 117, setresgid = 119
    public static let capset = 126, rtSigqueueinfo = 129, sigaltstack = 131, personality = 135
    public static let statfs = 137, setpriority = 141, schedSetscheduler = 144, pivotRoot = 155
    public static let prctl = 157, archPrctl = 158, chroot = 161, mount = 165, umount2 = 166
    public static let sethostname = 170, setdomainname = 171, gettid = 186, setTidAddress = 218
    public static let timerCreate = 222, timerSettime = 223, timerGettime = 224
    public static let timerGetoverrun = 225, timerDelete = 226, exitGroup = 231, epollCtl = 233
    public static let mqOpen = 240, mqUnlink = 241, mqTimedsend = 242, mqTimedreceive = 243
    public static let mqGetsetattr = 245, openat = 257, unshare = 272, setRobustList = 273
    public static let getRobustList = 274, tee = 276, timerfdCreate = 283, timerfdSettime = 286
    public static let signalfd4 = 289, eventfd2 = 290, epollCreate1 = 291, dup3 = 292, pipe2 = 293
    public static let rtTgsigqueueinfo = 297, fanotifyInit = 300, fanotifyMark = 301
    public static let prlimit64 = 302, openByHandleAt = 304, syncfs = 306, setns = 308, kcmp = 312
    public static let seccomp = 317, memfdCreate = 319, rseq = 334, openTree = 428, moveMount = 429
    public static let fsopen = 430, fsconfig = 431, fsmount = 432, pidfdOpen = 434, clone3 = 435
    public static let closeRange = 436, openat2 = 437, pidfdGetfd = 438, mountSetattr = 442
    public static let schedSetattr = 314, schedGetattr = 315, userfaultfd = 323, membarrier = 324, recvmsg = 47
}
