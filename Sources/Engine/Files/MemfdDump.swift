import Foundation
import LinuxKernel
import Images
import ProcFS

extension FileTableDump {
    /// A memfd: its inode (name, size, seals, owner) once in memfd.img, its contents as
    /// shared memory (pagemap-shmem-INO.img, the same object a MAP_SHARED mapping of it
    /// names, so mapping and fd stay one object after restore).
    func memfd(link: String, pid: Int32, fd: Int32, id: UInt32, info: FdInfo, st: stat) throws -> MemfdFileEntry {
        let inodeID = try memfdInode(path: "/proc/\(pid)/fd/\(fd)", link: link, st: st, at: "pid \(pid) fd \(fd)")
        var e = MemfdFileEntry()
        e.id = id; e.flags = info.flags & ~UInt32(O_CLOEXEC); e.pos = info.pos; e.fown = FownEntry.none
        e.inodeID = inodeID
        return e
    }

    /// The memfd inode behind `path` (an fd or a map_files entry), recorded once: a memfd
    /// that is only mapped keeps its name and seals too.
    func memfdInode(path: String, link: String, st: stat, at: String) throws -> UInt32 {
        let ino = UInt64(st.st_ino)
        if let id = kinds.memfdInodeIDs[ino] { return id }
        let ours = open(path, O_RDONLY | O_CLOEXEC)
        if ours < 0 { throw CheckpointError.errno("open memfd \(link) behind \(at)") }
        defer { close(ours) }
        guard ino <= UInt64(UInt32.max) else {
            throw CheckpointError(.unsupported, "\(at): memfd inode \(ino) does not fit the image's 32-bit shmid")
        }
        let seals = fcntl(ours, FileControl.getSeals)
        if seals < 0 { throw CheckpointError.errno("F_GET_SEALS of memfd \(link) behind \(at)") }
        var name = link.hasSuffix(" (deleted)") ? String(link.dropLast(" (deleted)".count)) : link
        name = String(name.dropFirst("/memfd:".count))
        var m = MemfdInodeEntry()
        m.inodeID = UInt64(kinds.memfdInodes.count + 1)
        m.name = name; m.uid = st.st_uid; m.gid = st.st_gid; m.size = UInt64(st.st_size)
        m.shmid = UInt32(ino); m.seals = UInt32(bitPattern: seals); m.mode = st.st_mode
        if let huge = HugePages.pageSize(st) { m.hugetlbFlag = HugePages.memfdFlag | HugePages.sizeFlag(pageSize: huge) }
        kinds.memfdInodes.append(m)
        kinds.memfdInodeIDs[ino] = UInt32(m.inodeID)
        kinds.memfdContents.append((path, ino))
        return UInt32(m.inodeID)
    }
}

extension FileTableDump {
    /// A MAP_SHARED mapping of a memfd: its inode goes to memfd.img like an fd's would,
    /// and the mapping names a memfd entry of files.img, as CRIU writes it (its restore
    /// maps that file; a shmem object of its own would no longer be the memfd's).
    func memfdMapping(pid: Int32, area: MemoryArea) throws -> UInt32 {
        let path = "/proc/\(pid)/map_files/\(String(area.start, radix: 16))-\(String(area.end, radix: 16))"
        var st = stat()
        if stat(path, &st) != 0 { throw CheckpointError.errno("stat \(path)") }
        let inode = try memfdInode(path: path, link: area.path, st: st, at: "pid \(pid) mapping \(area.start.hex)")
        return mappedMemfd(inodeID: inode)
    }
}
