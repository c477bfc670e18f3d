import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

/// A deleted file saved in the image (ghost-file-ID.img), one per inode: its data runs as
/// SEEK_DATA/SEEK_HOLE find them, so holes stay holes and a sparse file of any apparent
/// size costs only its data.
struct GhostFileSource {
    let id: UInt32
    var entry: GhostFileEntry
    /// Our fd on the deleted inode, read when the images are written.
    let fd: Int32
}

extension FileTableDump {
    /// CRIU's default --ghost-limit: deleted files larger than this are refused.
    static let defaultGhostLimit: UInt64 = 1 << 20

    /// The remap of a deleted-but-open regular file `id`: with no link left, its contents go
    /// into a ghost file; still linked under another name, a link made now keeps it
    /// reachable (--link-remap), so the restore opens the same inode.
    /// `source` opens the deleted inode (/proc/PID/fd/N, /proc/PID/map_files/A-B).
    func remapDeleted(id: UInt32, pid: Int32, source: String, path: String, st: stat, mntID: Int32, at: String) throws {
        var r = RemapFilePathEntry()
        r.origID = id
        if st.st_nlink > 0 {
            r.remapType = .linked
            r.remapID = try linkRemap(pid: pid, source: source, path: path, st: st, mntID: mntID, at: at)
        } else {
            r.remapType = .ghost
            r.remapID = try ghost(source: source, path: path, st: st, at: at)
        }
        remaps.append(r)
    }

    private func ghost(source: String, path: String, st: stat, at: String) throws -> UInt32 {
        let inode = "\(st.st_dev):\(st.st_ino)"
        if let id = ghostIDs[inode] { return id }
        var g = GhostFileEntry()
        g.uid = st.st_uid; g.gid = st.st_gid; g.mode = st.st_mode
        g.dev = UInt32(truncatingIfNeeded: st.st_dev); g.ino = UInt64(st.st_ino)
        g.atim = Self.time(st.st_atim); g.mtim = Self.time(st.st_mtim)
        var ours: Int32 = -1
        // Directories, FIFOs and device nodes are made again empty (mkdir, mknod).
        if st.st_mode & S_IFMT == S_IFREG {
            if UInt64(st.st_size) > ghostLimit {
                throw CheckpointError(.unsupported, "\(at): deleted file \(path) has \(st.st_size) bytes, over the ghost file limit of \(ghostLimit) (--ghost-limit)")
            }
            ours = open(source, O_RDONLY | O_CLOEXEC)
            if ours < 0 { throw CheckpointError.errno("open deleted file \(path) behind \(at)") }
            g.chunks = true; g.size = UInt64(st.st_size)
        } else if st.st_mode & S_IFMT == S_IFCHR || st.st_mode & S_IFMT == S_IFBLK {
            g.rdev = UInt32(truncatingIfNeeded: st.st_rdev)
        }
        let id = newID()
        ghosts.append(GhostFileSource(id: id, entry: g, fd: ours))
        ghostIDs[inode] = id
        return id
    }

    private static func time(_ t: Glibc.timespec) -> Timeval {
        var v = Timeval()
        v.tvSec = UInt64(t.tv_sec); v.tvUsec = UInt64(t.tv_nsec / 1000)
        return v
    }

    private func linkRemap(pid: Int32, source: String, path: String, st: stat, mntID: Int32, at: String) throws -> UInt32 {
        guard linkRemaps else {
            throw CheckpointError(.unsupported, "\(at): \(path) was deleted but is still linked under another name; dump with --link-remap")
        }
        let id = newID()
        let dir = (path as NSString).deletingLastPathComponent
        let remapPath = (dir == "/" ? "" : dir) + "/link_remap.\(id)"
        let hostPath = "/proc/\(pid)/root" + remapPath
        if linkat(AT_FDCWD, source, AT_FDCWD, hostPath, AT_SYMLINK_FOLLOW) != 0 {
            throw CheckpointError.errno("link \(at) (\(path), deleted) to \(remapPath)")
        }
        createdLinks.append(hostPath)
        var reg = RegFileEntry()
        reg.id = id; reg.flags = UInt32(O_RDONLY); reg.pos = 0; reg.fown = FownEntry.none; reg.name = remapPath
        reg.setSize(st); reg.mode = st.st_mode; reg.mntID = mntID
        var f = FileEntry()
        f.type = .reg; f.id = id; f.reg = reg
        files.append(f)
        return id
    }

    /// The file entry for `pid`'s cwd or root ("cwd", "root"): a directory removed while in
    /// use is made again empty at restore and removed once the task is in it.
    func placeEntry(of pid: Int32, _ which: String) throws -> UInt32 {
        let link = try ProcTree.link("/proc/\(pid)/\(which)")
        var st = stat()
        guard stat("/proc/\(pid)/\(which)", &st) == 0, st.st_nlink == 0 else {
            return pathEntry(link, flags: UInt32(O_RDONLY | O_DIRECTORY))
        }
        let path = link.hasSuffix(" (deleted)") ? String(link.dropLast(" (deleted)".count)) : link
        if let id = pathIDs[link] { return id }
        let id = newID()
        var f = FileEntry()
        f.type = .reg; f.id = id
        f.reg.id = id; f.reg.flags = UInt32(O_RDONLY | O_DIRECTORY); f.reg.pos = 0; f.reg.fown = FownEntry.none
        f.reg.name = path; f.reg.setSize(st); f.reg.mode = st.st_mode
        files.append(f)
        pathIDs[link] = id
        try remapDeleted(id: id, pid: pid, source: "/proc/\(pid)/\(which)", path: path, st: st, mntID: 0, at: "pid \(pid) \(which)")
        return id
    }

    /// The file entry a mapping of a deleted file names (one per inode and access): the
    /// file comes back as a ghost or link remap, so the restore maps it like any file.
    func deletedMappingEntry(pid: Int32, area: MemoryArea, flags: UInt32) throws -> UInt32 {
        let source = "/proc/\(pid)/map_files/\(String(area.start, radix: 16))-\(String(area.end, radix: 16))"
        var st = stat()
        if stat(source, &st) != 0 { throw CheckpointError.errno("stat \(source)") }
        let key = "deleted-map:\(st.st_dev):\(st.st_ino):\(flags)"
        if let id = pathIDs[key] { return id }
        let path = Self.deletedPath(area.path)
        let id = newID()
        var f = FileEntry()
        f.type = .reg; f.id = id
        f.reg.id = id; f.reg.flags = flags; f.reg.pos = 0; f.reg.fown = FownEntry.none
        f.reg.name = path; f.reg.setSize(st); f.reg.mode = st.st_mode
        files.append(f)
        pathIDs[key] = id
        try remapDeleted(id: id, pid: pid, source: source, path: path, st: st, mntID: 0, at: "pid \(pid) mapping \(area.start.hex)")
        return id
    }

    /// The links made for --link-remap, removed when the dump fails.
    func removeLinkRemaps() {
        for p in createdLinks { unlink(p) }
        createdLinks = []
    }

    /// Each ghost file's entry, then each data run as a chunk entry and its bytes.
    func writeGhosts(to images: ImageDirectory) throws {
        for g in ghosts {
            let w = try images.writer(.ghostFile(g.id))
            try w.append(g.entry)
            if g.fd < 0 { try w.close(); continue }
            var hole: off_t = 0
            let size = off_t(g.entry.size)
            while hole < size {
                let data = lseek(g.fd, hole, 3 /* SEEK_DATA */)
                if data < 0 && errno == ENXIO { break }
                if data < 0 { throw CheckpointError.errno("SEEK_DATA in ghost file \(g.id)") }
                hole = lseek(g.fd, data, 4 /* SEEK_HOLE */)
                if hole < 0 { throw CheckpointError.errno("SEEK_HOLE in ghost file \(g.id)") }
                hole = min(hole, size)
                var c = GhostChunkEntry()
                c.off = UInt64(data); c.len = UInt64(hole - data)
                try w.append(c)
                try copy(g.fd, from: data, count: Int(hole - data), to: w, ghost: g.id)
            }
            try w.close()
        }
    }

    private func copy(_ fd: Int32, from offset: off_t, count: Int, to w: ImageWriter, ghost: UInt32) throws {
        var buf = [UInt8](repeating: 0, count: min(count, 1 << 20))
        var done = 0
        while done < count {
            let want = min(buf.count, count - done)
            let n = try Syscall.retrying("read ghost file \(ghost) at \(offset + off_t(done))") { pread(fd, &buf, want, offset + off_t(done)) }
            // The file shrank behind our back: the size in the entry would lie.
            if n == 0 { throw CheckpointError(.invalidState, "ghost file \(ghost): ends at \(offset + off_t(done)), before its size") }
            try w.appendRaw(Data(buf[0..<n]))
            done += n
        }
    }
}
