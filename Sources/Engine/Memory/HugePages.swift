import Foundation
import LinuxKernel
import Images
import ProcFS

/// hugetlb memory as CRIU records it: MAP_HUGETLB with the page size (its log2 at bit 26)
/// in a vma's flags, MFD_HUGETLB with the same size bits in a memfd inode's hugetlb_flag.
enum HugePages {
    static let sizeShift: UInt32 = 26
    static let sizeMask: UInt32 = 0x3f << sizeShift
    static let memfdFlag: UInt32 = 4  // MFD_HUGETLB

    /// The size bits of a huge page size (MAP_HUGETLB_2MB for 2 MiB...).
    static func sizeFlag(pageSize: Int) -> UInt32 { UInt32(pageSize.trailingZeroBitCount) << sizeShift }

    /// MAP_HUGETLB and the size bits of `vmaFlags`, nothing else.
    static func mapFlags(_ vmaFlags: UInt32) -> UInt32 { vmaFlags & (UInt32(MAP_HUGETLB) | sizeMask) }

    /// A private hugetlb area: filled from the process's own pages, never shared with a
    /// parent or child before the restore's fork (a fork would copy it huge page by page).
    static func isPrivate(_ vma: VmaEntry) -> Bool {
        vma.status & (VmaStatus.anonPrivate | VmaStatus.filePrivate) != 0 && vma.flags & UInt32(MAP_HUGETLB) != 0
    }

    /// hugetlbfs reports its page size as the block size of its files.
    static func pageSize(_ st: stat) -> Int? { st.st_blksize > 4096 ? Int(st.st_blksize) : nil }

    /// MAP_HUGETLB and the size bits of a hugetlb area, its page size read from the file
    /// behind it (the kernel's internal hugetlbfs for MAP_HUGETLB without a file).
    static func areaFlags(pid: Int32, area: MemoryArea) throws -> UInt32 {
        let path = "/proc/\(pid)/map_files/\(String(area.start, radix: 16))-\(String(area.end, radix: 16))"
        var st = stat()
        if stat(path, &st) != 0 { throw CheckpointError.errno("stat \(path)") }
        guard let size = pageSize(st) else {
            throw CheckpointError(.invalidState, "pid \(pid): hugetlb mapping \(area.start.hex) has \(st.st_blksize)-byte blocks")
        }
        return UInt32(MAP_HUGETLB) | sizeFlag(pageSize: size)
    }

    /// MAP_HUGETLB without a file: the kernel names the area after its internal file.
    static func isAnonymous(_ area: MemoryArea) -> Bool { area.path.hasPrefix("/anon_hugepage") }

    /// The parts of a hugetlbfs file that hold data, as (offset, length) runs of 2 MiB
    /// (or page-sized) pieces. hugetlbfs knows no holes (SEEK_DATA sees the whole file)
    /// and reads a page never faulted in as zeros: zeros are left out, so the restore
    /// allocates no page the process had not, and the rest of a huge page it writes is
    /// zeros again (hugetlb pages are cleared when faulted in).
    static func dataRuns(fd: Int32, size: UInt64, pageSize: Int) throws -> [(UInt64, Int)] {
        let chunk = min(pageSize, 2 << 20)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buffer.deallocate() }
        var runs: [(UInt64, Int)] = []
        var at: UInt64 = 0
        while at < size {
            let n = pread(fd, buffer, chunk, off_t(at))
            if n < 0 { throw CheckpointError.errno("read hugetlb file at \(at)") }
            if n == 0 { break }
            if !isZero(buffer, n) {
                if let last = runs.last, last.0 + UInt64(last.1) == at { runs[runs.count - 1].1 += chunk }
                else { runs.append((at, chunk)) }
            }
            at += UInt64(chunk)
        }
        return runs
    }

    private static func isZero(_ p: UnsafeMutableRawPointer, _ count: Int) -> Bool {
        let words = p.bindMemory(to: UInt64.self, capacity: count / 8)
        for i in 0..<count / 8 where words[i] != 0 { return false }
        return true
    }
}
