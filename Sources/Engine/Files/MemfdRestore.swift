import Foundation
import LinuxKernel
import CShim
import Images

extension RestoreResources {
    /// Our fd on the memfd object that shmid `shmid` names, if a memfd of the images has it:
    /// a MAP_SHARED mapping of a memfd maps the same object as its fds.
    func memfdObject(shmid: UInt64) throws -> Int32? {
        guard let inode = images.memfds.values.first(where: { UInt64($0.shmid) == shmid }) else { return nil }
        return try memfdObject(inode)
    }

    /// memfd_create with the dumped name, then size, contents, owner and mode; the seals
    /// wait for sealMemfds().
    private func memfdObject(_ m: MemfdInodeEntry) throws -> Int32 {
        if let fd = kinds.memfdObjects[m.inodeID] { return fd }
        let sealSeal: UInt32 = 1
        let allowSealing = m.seals != sealSeal
        let fd = try m.name.withCString {
            try Syscall.rawFd("memfd_create \(m.name)", SyscallNumber.memfdCreate, Int(bitPattern: $0),
                              MemfdFlag.cloexec | (allowSealing ? MemfdFlag.allowSealing : 0) | Int(m.hugetlbFlag))
        }
        kinds.memfdObjects[m.inodeID] = fd
        if ftruncate(fd, off_t(m.size)) != 0 { throw CheckpointError.errno("size memfd \(m.name) to \(m.size)") }
        if let s = images.shmem[UInt64(m.shmid)], !s.runs.isEmpty {
            if kinds.pages == nil { kinds.pages = PagesImage(dir: images.dir) }
            guard let base = try kinds.pages!.base(s.pagesID) else { throw CheckpointError(.image, "\(ImageName.pages(s.pagesID)) is empty") }
            // hugetlbfs has no write(): a hugetlb memfd is filled through a mapping of it.
            let mapped = m.hugetlbFlag != 0 ? mmap(nil, Int(m.size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : nil
            if mapped == MAP_FAILED { throw CheckpointError.errno("map hugetlb memfd \(m.name) to fill it") }
            defer { if let mapped { munmap(mapped, Int(m.size)) } }
            var offset = 0
            for run in s.runs {
                let len = Int(run.nrPages) * 4096
                guard run.vaddr < m.size else {
                    throw CheckpointError(.image, "\(ImageName.pagemapShmem(m.shmid)): run at \(run.vaddr) beyond memfd \(m.name)'s \(m.size) bytes")
                }
                let n = min(len, Int(m.size) - Int(run.vaddr))
                if let mapped {
                    (mapped + Int(run.vaddr)).copyMemory(from: base + offset, byteCount: n)
                } else if pwrite(fd, base + offset, n, off_t(run.vaddr)) != n {
                    throw CheckpointError.errno("fill memfd \(m.name)")
                }
                offset += len
            }
        }
        if fchown(fd, m.uid, m.gid) != 0 { throw CheckpointError.errno("chown memfd \(m.name)") }
        if m.hasMode && fchmod(fd, mode_t(m.mode & 0o7777)) != 0 { throw CheckpointError.errno("chmod memfd \(m.name)") }
        if allowSealing && m.seals != 0 { kinds.pendingSeals.append((fd, Int32(bitPattern: m.seals), m.name)) }
        return fd
    }

    /// An fd on the memfd: the object reopened with the dumped flags and offset.
    func openMemfd(_ e: MemfdFileEntry, _ what: String) throws -> Int32 {
        guard let inode = images.memfds[UInt64(e.inodeID)] else {
            throw CheckpointError(.image, "\(what): memfd inode \(e.inodeID) is not in \(ImageName.memfd)")
        }
        let object = try memfdObject(inode)
        let flags = Int32(bitPattern: e.flags) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY) | O_CLOEXEC
        let fd = open("/proc/self/fd/\(object)", flags)
        if fd < 0 { throw CheckpointError.errno("reopen memfd \(inode.name) for \(what)") }
        if e.pos != 0 && lseek(fd, off_t(e.pos), SEEK_SET) < 0 { close(fd); throw CheckpointError.errno("seek memfd \(inode.name) to \(e.pos)") }
        return fd
    }
}
