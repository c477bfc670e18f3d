import Foundation
import LinuxKernel
import CShim
import Images

extension RestoreResources {
    /// An inotify instance whose watches get their dumped descriptors back: descriptors
    /// are handed out in increasing order, so a gap is skipped by adding and removing a
    /// throwaway watch. The IN_IGNORED events that leaves are read off before handing over.
    func openInotify(_ e: InotifyFileEntry, _ what: String) throws -> Int32 {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0 { throw CheckpointError.errno("inotify_init1 for \(what)") }
        do {
            let scratch = try Syscall.rawFd("memfd_create", SyscallNumber.memfdCreate, Int(bitPattern: ("ocicheckpoint-wd" as StaticString).utf8Start), MemfdFlag.cloexec)
            defer { close(scratch) }
            var next: Int32 = 1  // a new instance hands out 1, 2, 3, ...
            for w in e.wd.sorted(by: { Int32(bitPattern: $0.wd) < Int32(bitPattern: $1.wd) }) {
                let wanted = Int32(bitPattern: w.wd)
                if wanted - next > 1 << 20 { throw CheckpointError(.unsupported, "\(what): watch descriptor \(wanted) is too far to reach") }
                while next < wanted {
                    let got = inotify_add_watch(fd, "/proc/self/fd/\(scratch)", UInt32(IN_ATTRIB))
                    if got < 0 { throw CheckpointError.errno("inotify_add_watch (skipping to wd \(wanted)) for \(what)") }
                    inotify_rm_watch(fd, got)
                    next = got + 1
                }
                let target = try openWatched(w.fHandle, what)
                defer { close(target) }
                let got = inotify_add_watch(fd, "/proc/self/fd/\(target)", w.mask)
                if got < 0 { throw CheckpointError.errno("inotify_add_watch \(w.fHandle.path) for \(what)") }
                if got != wanted { throw CheckpointError(.invalidState, "\(what): \(w.fHandle.path) got watch descriptor \(got), not \(wanted)") }
                next = got + 1
            }
            var buf = [UInt8](repeating: 0, count: 65536)
            while read(fd, &buf, buf.count) > 0 {}
            if e.flags & UInt32(O_NONBLOCK) == 0 { _ = fcntl(fd, F_SETFL, 0) }
        } catch { close(fd); throw error }
        return fd
    }

    /// A fanotify group with its inode and mount marks added again by path.
    func openFanotify(_ e: FanotifyFileEntry, _ what: String) throws -> Int32 {
        let flags = Int(e.faflags) | 1 /* FAN_CLOEXEC */
        let fd = try Syscall.rawFd("fanotify_init for \(what)", SyscallNumber.fanotifyInit, flags, Int(e.evflags))
        do {
            for m in e.mark {
                let target: Int32
                var markFlags = UInt64(m.mflags)
                switch m.type {
                case .inode: target = try openWatched(m.ie.fHandle, what)
                case .mount:
                    target = openPath(m.me.path, O_PATH_ | O_CLOEXEC)
                    if target < 0 { throw CheckpointError.errno("open mount point \(m.me.path) for \(what)") }
                    markFlags |= 0x10 /* FAN_MARK_MOUNT */
                }
                defer { close(target) }
                for (mask, extra) in [(m.mask, UInt64(0)), (m.ignoredMask, 0x20 /* FAN_MARK_IGNORED_MASK */)] where mask != 0 {
                    // Through the magic link: fanotify_mark takes no O_PATH descriptor itself.
                    try "/proc/self/fd/\(target)".withCString {
                        _ = try Syscall.raw("fanotify_mark \(m.type == .mount ? m.me.path : m.ie.fHandle.path) for \(what)", SyscallNumber.fanotifyMark,
                                            Int(fd), Int(1 /* FAN_MARK_ADD */ | markFlags | extra), Int(mask), Int(AT_FDCWD), Int(bitPattern: $0))
                    }
                }
            }
            if e.flags & UInt32(O_NONBLOCK) != 0 { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
        } catch { close(fd); throw error }
        return fd
    }

    private var O_PATH_: Int32 { 0o10000000 }

    /// The watched inode, by the path the dump found for it (inside the tree's root).
    private func openWatched(_ fh: FhEntry, _ what: String) throws -> Int32 {
        guard fh.hasPath, fh.path.hasPrefix("/") else { throw CheckpointError(.image, "\(what): a watch without a path") }
        let fd = openPath(fh.path, O_PATH_ | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open watched path \(fh.path) for \(what)") }
        return fd
    }
}
