import Foundation
import LinuxKernel
import Images
import ProcFS

extension MemoryDump {
    /// The vma entry of one area, as CRIU classifies it (status, flags, madv, file).
    func entry(for area: MemoryArea, pid: Int32) throws -> VmaEntry {
        var v = VmaEntry()
        v.start = area.start; v.end = area.end; v.pgoff = area.offset; v.shmid = 0; v.fd = -1; v.madv = 0; v.fdflags = 0
        v.prot = (area.readable ? UInt32(PROT_READ) : 0) | (area.writable ? UInt32(PROT_WRITE) : 0) | (area.executable ? UInt32(PROT_EXEC) : 0)
        v.flags = UInt32(area.shared ? MAP_SHARED : MAP_PRIVATE)
        if area.vmFlags.contains("gd") { v.flags |= UInt32(MAP_GROWSDOWN) }
        if area.vmFlags.contains("lo") { v.flags |= UInt32(MAP_LOCKED) }
        if area.vmFlags.contains("nr") { v.flags |= UInt32(MAP_NORESERVE) }
        if area.vmFlags.contains("dp") { v.flags |= 0x08 /* MAP_DROPPABLE */ }
        v.madv = Self.advice(area.vmFlags)
        // The access a file opened for this mapping needs, as CRIU records it (its restore
        // opens the mapped file with exactly these flags).
        v.fdflags = UInt32(area.shared && area.vmFlags.contains("mw") ? O_RDWR : O_RDONLY)
        v.status = Self.status(of: area)
        if area.isSpecial {
            v.flags |= UInt32(MAP_ANONYMOUS)
            return v
        }
        if area.vmFlags.contains("io") || area.vmFlags.contains("pf") {
            throw CheckpointError(.unsupported, "pid \(pid): mapping \(area.start.hex)-\(area.end.hex) \(area.path) is device memory (VM_IO/VM_PFNMAP)")
        }
        if area.vmFlags.contains("ht") {
            try Self.checkHugetlb(area, pid: pid)
            v.flags |= try HugePages.areaFlags(pid: pid, area: area)
        }
        if v.status & VmaStatus.aioRing != 0 { return v }
        if v.status & VmaStatus.sysvIPC != 0 {
            // A SysV shm attachment: the inode number of its file is the segment's id.
            v.flags |= UInt32(MAP_ANONYMOUS)
            v.shmid = area.inode
        } else if HugePages.isAnonymous(area) {
            v.flags |= UInt32(MAP_ANONYMOUS)
            if area.shared { v.shmid = area.inode }
        } else if v.status & VmaStatus.memfd != 0 {
            v.shmid = UInt64(try files.memfdMapping(pid: pid, area: area))
        } else if v.status & VmaStatus.anonShared != 0 {
            v.flags |= UInt32(MAP_ANONYMOUS)
            v.shmid = area.inode
        } else if area.isFileBacked && !area.isDeletedFile {
            v.shmid = UInt64(files.pathEntry(area.path, flags: v.fdflags))
        } else if area.isFileBacked {
            // A deleted file: carried as a ghost file, shared by every mapping and fd on it.
            v.shmid = UInt64(try files.deletedMappingEntry(pid: pid, area: area, flags: v.fdflags))
        } else if area.shared && area.path.hasPrefix("socket:[") {
            throw CheckpointError(.unsupported, "pid \(pid): packet ring \(area.path) mapped at \(area.start.hex)-\(area.end.hex) cannot be dumped: the kernel's position in the ring can be neither read nor set, so the process would wait on another frame than the kernel fills")
        } else if area.shared {
            throw CheckpointError(.unsupported, "pid \(pid): shared mapping \(area.start.hex)-\(area.end.hex) \(area.path) is not supported")
        } else {
            v.flags |= UInt32(MAP_ANONYMOUS)
        }
        return v
    }

    /// An area's status as CRIU classifies it, from what maps shows (path and sharing)
    /// alone, so the pages can be chosen before smaps answers; 0 for a shared mapping no
    /// dump takes (entry(for:) names it).
    static func status(of area: MemoryArea) -> UInt32 {
        switch area.path {
        // Private anonymous areas too, as CRIU marks them.
        case "[vdso]": return VmaStatus.regular | VmaStatus.vdso | VmaStatus.anonPrivate
        case "[vvar]", "[vvar_vclock]": return VmaStatus.regular | VmaStatus.vvar | VmaStatus.anonPrivate
        case "[vsyscall]": return VmaStatus.vsyscall | VmaStatus.anonPrivate
        default: break
        }
        if AioRing.isRing(area.path) { return VmaStatus.aioRing }
        if area.path.hasPrefix("/SYSV") { return VmaStatus.regular | VmaStatus.anonShared | VmaStatus.sysvIPC }
        // MAP_HUGETLB without a file, as CRIU keeps it: anonymous, its size in the flags.
        if HugePages.isAnonymous(area) { return VmaStatus.regular | (area.shared ? VmaStatus.anonShared : VmaStatus.anonPrivate) }
        if area.shared && area.isMemfd { return VmaStatus.regular | VmaStatus.fileShared | VmaStatus.memfd }
        if area.isSharedAnonymous { return VmaStatus.regular | VmaStatus.anonShared }
        if area.isFileBacked { return VmaStatus.regular | (area.shared ? VmaStatus.fileShared : VmaStatus.filePrivate) }
        if area.shared { return 0 }
        var status = VmaStatus.regular | VmaStatus.anonPrivate
        if area.path == "[heap]" { status |= VmaStatus.heap }
        if area.path == "[stack]" { status |= VmaStatus.stack }
        return status
    }

    /// hugetlb memory a restore cannot make again: a file of a mounted hugetlbfs (not in
    /// the images), a private mapping of a hugetlb memfd.
    static func checkHugetlb(_ area: MemoryArea, pid: Int32) throws {
        if HugePages.isAnonymous(area) || (area.isMemfd && area.shared) { return }
        let what = area.isMemfd ? "private mapping of hugetlb memfd" : "mapping of hugetlbfs file"
        throw CheckpointError(.unsupported, "pid \(pid): \(what) \(area.start.hex)-\(area.end.hex) \(area.path) is not supported")
    }

    /// The madvise state smaps shows in VmFlags, as CRIU keeps it: bit N for advice N.
    static func advice(_ vmFlags: Set<String>) -> UInt64 {
        let byFlag: [String: Int32] = ["sr": MADV_SEQUENTIAL, "rr": MADV_RANDOM, "dc": MADV_DONTFORK, "dd": MADV_DONTDUMP,
                                       "mg": MADV_MERGEABLE, "hg": MADV_HUGEPAGE, "nh": MADV_NOHUGEPAGE, "wf": 18 /* MADV_WIPEONFORK */]
        return byFlag.reduce(0) { vmFlags.contains($1.key) ? $0 | 1 << UInt64($1.value) : $0 }
    }

    /// Whether the process turned transparent huge pages off (PR_SET_THP_DISABLE).
    static func thpDisabled(pid: Int32) -> Bool {
        ((try? readProcFile("/proc/\(pid)/status")) ?? "").contains("THP_enabled:\t0")
    }

    /// A range of MADV_GUARD_INSTALL guards, as CRIU records it: a vma entry of its own.
    static func guardEntry(_ start: UInt64, _ end: UInt64) -> VmaEntry {
        var v = VmaEntry()
        v.start = start; v.end = end; v.pgoff = 0; v.shmid = 0; v.prot = 0; v.flags = 0
        v.status = VmaStatus.guardRegion; v.fd = -1
        return v
    }
}
