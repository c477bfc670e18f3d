import Foundation
import CShim

/// Runs work inside another task's namespaces, on a thread of our own made for it: the
/// thread unshares its fs struct (so it may join a mount namespace), joins the task's
/// namespaces with setns(2), runs the closure and ends. The rest of the process, and the
/// thread that asked, stay where they were.
public enum NamespaceJoin {
    public static func run<T>(in pid: Int32, _ kinds: [NamespaceKind], _ body: @escaping () throws -> T) throws -> T {
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        for kind in kinds {
            let fd = open("/proc/\(pid)/ns/\(kind.rawValue)", O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw CheckpointError.errno("open /proc/\(pid)/ns/\(kind.rawValue)") }
            fds.append(fd)
        }
        let joined = zip(fds, kinds).map { ($0, $1) }
        return try onOwnThread {
            try Syscall.raw("unshare(CLONE_FS) for joining pid \(pid)", SyscallNumber.unshare, CloneFlags.fs.argument)
            for (fd, kind) in joined {
                try Syscall.raw("setns into the \(kind.rawValue) namespace of pid \(pid)", SyscallNumber.setns, Int(fd))
            }
            return try body()
        }
    }

    /// Runs `body` on a thread made for it, which ends afterwards: whatever namespaces the
    /// body enters for its children go with the thread.
    public static func onOwnThread<T>(_ body: @escaping () throws -> T) throws -> T {
        let box = ResultBox<T>()
        let thread = Thread {
            box.result = Result { try body() }
            box.done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
        box.done.wait()
        return try box.result!.get()
    }

    private final class ResultBox<T>: @unchecked Sendable {
        var result: Result<T, Error>?
        let done = DispatchSemaphore(value: 0)
    }
}
