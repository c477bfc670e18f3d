import Foundation
import CShim
import ProcFS

/// Finds the path of an inode that inotify or fanotify watches: the kernel shows a file
/// handle, which open_by_handle_at turns into a file on one of the task's mounts of that
/// filesystem; the path is then read back as the task's root sees it and checked.
enum WatchedPath {
    static func path(pid: Int32, ino: UInt64, sdev: UInt32, handleType: Int32, handle: [UInt8], what: String) throws -> String {
        let major = sdev >> 20, minor = sdev & 0xfffff
        let root = "/proc/\(pid)/root"
        let rootLink = (try? ProcTree.link(root)) ?? "/"
        for mountPoint in try mountPoints(pid: pid, device: "\(major):\(minor)") {
            // open_by_handle_at wants a real open file of the filesystem (no O_PATH).
            let mfd = open(root + mountPoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard mfd >= 0 else { continue }
            defer { close(mfd) }
            // struct file_handle: handle_bytes, handle_type, then the handle.
            let fh = bytes(UInt32(handle.count)) + bytes(handleType) + handle
            let fd = fh.withUnsafeBufferPointer {
                oc_syscall(304 /* open_by_handle_at */, Int(mfd), Int(bitPattern: $0.baseAddress), Int(O_CLOEXEC | 0o10000000), 0, 0, 0)
            }
            guard fd >= 0 else { continue }
            defer { close(Int32(fd)) }
            guard var path = try? ProcTree.link("/proc/self/fd/\(fd)"), path.hasPrefix("/"), !path.hasSuffix(" (deleted)") else { continue }
            if rootLink != "/" && path.hasPrefix(rootLink + "/") { path = String(path.dropFirst(rootLink.count)) }
            var st = stat()
            if stat(root + path, &st) == 0 && UInt64(st.st_ino) == ino { return path }
        }
        throw CheckpointError(.unsupported, "pid \(pid): \(what) watches inode \(ino) on device \(major):\(minor), whose path cannot be found (deleted, or not reachable from the task's root)")
    }

    /// The mount points (as the task sees them) of the filesystem on `device` ("maj:min").
    private static func mountPoints(pid: Int32, device: String) throws -> [String] {
        try readProcFile("/proc/\(pid)/mountinfo").split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count > 4, f[2] == device else { return nil }
            return String(f[4])
        }
    }

    /// The mount point of mount `id` (as /proc/PID/mountinfo numbers it).
    static func mountPoint(pid: Int32, id: Int32) throws -> String? {
        try readProcFile("/proc/\(pid)/mountinfo").split(separator: "\n").lazy.compactMap { line -> String? in
            let f = line.split(separator: " ")
            guard f.count > 4, Int32(f[0]) == id else { return nil }
            return String(f[4])
        }.first
    }

    private static func bytes<T>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
}
