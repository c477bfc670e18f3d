import Foundation
import LinuxKernel
import Images
import CShim
import ProcFS

/// Finds the path of an inode that inotify or fanotify watches: the kernel shows a file
/// handle, which open_by_handle_at turns into a file on one of the task's mounts of that
/// filesystem; its path is then read as the task's root sees it, and checked.
///
/// Nothing here opens a file for reading (O_PATH and directory changes only): a real open
/// would itself raise events in the watches being dumped. open_by_handle_at takes no
/// O_PATH descriptor as its mount, so it resolves from the working directory of a thread
/// of our own, which also chroots into the task's root so the path comes out as the task
/// sees it (inside a container too).
enum WatchedPath {
    static func path(pid: Int32, ino: UInt64, sdev: UInt32, handleType: Int32, handle: [UInt8], what: String) throws -> String {
        let major = sdev >> 20, minor = sdev & 0xfffff
        let proc = open("/proc", O_PATH_ | O_DIRECTORY | O_CLOEXEC)
        let root = open("/proc/\(pid)/root", O_PATH_ | O_DIRECTORY | O_CLOEXEC)
        var mounts: [Int32] = []
        defer { for fd in [proc, root] + mounts where fd >= 0 { close(fd) } }
        if proc < 0 || root < 0 { throw CheckpointError.errno("open /proc/\(pid)/root") }
        for mountPoint in try mountPoints(pid: pid, major: major, minor: minor) {
            let fd = open("/proc/\(pid)/root" + mountPoint, O_PATH_ | O_DIRECTORY | O_CLOEXEC)
            if fd >= 0 { mounts.append(fd) }
        }
        // struct file_handle: handle_bytes, handle_type, then the handle.
        let fh = withUnsafeBytes(of: UInt32(handle.count)) { Array($0) } + withUnsafeBytes(of: handleType) { Array($0) } + handle
        let found: String? = try NamespaceJoin.onOwnThread {
            try Syscall.raw("unshare(CLONE_FS)", SyscallNumber.unshare, CloneFlags.fs.argument)
            guard fchdir(root) == 0, chroot(".") == 0 else { throw CheckpointError.errno("chroot into the root of pid \(pid)") }
            for m in mounts {
                guard fchdir(m) == 0 else { continue }
                let opened = fh.withUnsafeBufferPointer {
                    Syscall.result(SyscallNumber.openByHandleAt, Int(AT_FDCWD), Int(bitPattern: $0.baseAddress), Int(O_CLOEXEC | O_PATH_))
                }
                guard case .success(let fd) = opened else { continue }
                defer { close(Int32(fd)) }
                var buf = [CChar](repeating: 0, count: 4097)
                let n = readlinkat(proc, "self/fd/\(fd)", &buf, 4096)
                guard n > 0 else { continue }
                let path = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                var st = stat()
                if path.hasPrefix("/"), stat(path, &st) == 0, UInt64(st.st_ino) == ino { return path }
            }
            return nil
        }
        if let found { return found }
        throw CheckpointError(.unsupported, "pid \(pid): \(what) watches inode \(ino) on device \(major):\(minor), whose path cannot be found (deleted, or not reachable from the task's root)")
    }

    private static let O_PATH_ = OpenFlag.path

    /// The mount points (as the task sees them) of the filesystem on device `major`:`minor`.
    private static func mountPoints(pid: Int32, major: UInt32, minor: UInt32) throws -> [String] {
        try MountInfoEntry.read(pid: pid).filter { $0.devMajor == major && $0.devMinor == minor }.map(\.mountPoint)
    }

    /// The mount point of mount `id` (as /proc/PID/mountinfo numbers it).
    static func mountPoint(pid: Int32, id: Int32) throws -> String? {
        try MountInfoEntry.read(pid: pid).first { $0.mountID == Int(id) }?.mountPoint
    }
}
