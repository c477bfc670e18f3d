import Foundation
import LinuxKernel
import CheckpointArchive
import CShim

/// A podman container's /dev/shm (a tmpfs podman bind-mounts from its static directory),
/// as devshm-checkpoint.tar. runc hands the mount to the engine as external, so its files
/// are not in the images. Once the container has exited podman's cleanup unmounts that
/// tmpfs, and its content is gone: a detached clone of the mount (open_tree) taken before
/// the checkpoint keeps it readable until we close it, without making podman's unmount busy.
final class ShmSnapshot {
    private let fd: Int32
    let source: String

    /// Holds the mount at `dir`, which must be a mount point of its own.
    init(mountedAt dir: String) throws {
        var st = stat(), parent = stat()
        guard stat(dir, &st) == 0, stat(dir + "/..", &parent) == 0, st.st_dev != parent.st_dev else {
            throw CheckpointError(.notFound, "/dev/shm of the container: \(dir) is not mounted")
        }
        fd = try dir.withCString {
            try Syscall.rawFd("/dev/shm of the container: open_tree \(dir)", SyscallNumber.openTree, Int(AT_FDCWD), Int(bitPattern: $0), 1 /* OPEN_TREE_CLONE */ | Int(O_CLOEXEC))
        }
        source = dir
    }

    deinit { close(fd) }

    /// Writes every entry of the held tmpfs into `file` (an empty tar when it is empty).
    func write(to file: String) throws {
        let root = "/proc/self/fd/\(fd)"
        var paths: [String] = []
        func walk(_ relative: String) {
            let dir = relative.isEmpty ? root : root + "/" + relative
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() {
                let rel = relative.isEmpty ? name : relative + "/" + name
                paths.append(rel)
                var st = stat()
                if lstat(root + "/" + rel, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { walk(rel) }
            }
        }
        walk("")
        do { try TarFile.write(root: root, paths: paths, to: file) } catch {
            throw CheckpointError(.invalidState, "/dev/shm of the container (\(source)): \(error)")
        }
    }
}
