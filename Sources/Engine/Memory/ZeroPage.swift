import Foundation

/// The kernel's shared zero page (and huge zero page): read faults on untouched anonymous
/// memory map it, and such pages need not be saved.
enum ZeroPage {
    static let pfns: (small: UInt64, huge: UInt64?) = {
        func pfn(of p: UnsafeMutableRawPointer) -> UInt64 {
            let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
            defer { close(fd) }
            var e: UInt64 = 0
            _ = pread(fd, &e, 8, off_t(UInt(bitPattern: p) / 4096 * 8))
            return e & ((1 << 55) - 1)
        }
        let size = 4 << 20
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED else { return (0, nil) }
        defer { munmap(m, size) }
        let small = m.load(as: UInt8.self) == 0 ? pfn(of: m) : 0
        let aligned = UnsafeMutableRawPointer(bitPattern: (UInt(bitPattern: m) + (2 << 20) - 1) & ~UInt((2 << 20) - 1))!
        _ = madvise(aligned, 2 << 20, 14 /* MADV_HUGEPAGE */)
        let huge = aligned.load(as: UInt8.self) == 0 ? pfn(of: aligned) : 0
        return (small, huge != small && huge != 0 ? huge & ~511 : nil)
    }()

    static func isZero(pfn: UInt64) -> Bool {
        if pfn == 0 { return false }
        if pfn == pfns.small { return true }
        if let h = pfns.huge, pfn >= h && pfn < h + 512 { return true }
        return false
    }
}
