import Foundation

/// What PAGEMAP_SCAN says of a page (PAGE_IS_* of linux/fs.h, Linux 6.7; guard pages 6.15).
public struct PageCategories: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// In an area registered for async write-protect (an area the dump tracks).
    public static let writeProtectAllowed = PageCategories(rawValue: 1 << 0)
    /// Not write-protected: written since the last protecting scan (userfaultfd async wp).
    public static let written = PageCategories(rawValue: 1 << 1)
    /// Not an anonymous page: a file's, or shared memory's.
    public static let file = PageCategories(rawValue: 1 << 2)
    public static let present = PageCategories(rawValue: 1 << 3)
    /// Swapped out, or any other non-present entry (a guard, a write-protect marker).
    public static let swapped = PageCategories(rawValue: 1 << 4)
    /// The shared zero page (or huge zero page).
    public static let zeroPage = PageCategories(rawValue: 1 << 5)
    /// MADV_GUARD_INSTALL.
    public static let guardPage = PageCategories(rawValue: 1 << 8)
}

/// Pages [start, end) sharing the categories a scan reports.
public struct PageRegion: Equatable, Sendable {
    public var start: UInt64
    public var end: UInt64
    public var categories: PageCategories
    public init(start: UInt64, end: UInt64, categories: PageCategories) {
        self.start = start; self.end = end; self.categories = categories
    }
}

/// PAGEMAP_SCAN on /proc/PID/pagemap: the kernel walks the page tables and answers with
/// ranges, so a 2 GiB area of one kind costs one region, not half a million entries.
public enum PagemapScan {
    static let request: UInt = 0xC060_6610
    static let writeProtectMatching: UInt64 = 1 << 0
    /// The top of x86_64's user address space (TASK_SIZE).
    public static let userTop: UInt64 = 0x7FFF_FFFF_F000

    /// The regions of [start, end) whose pages have every category of `all` and one of
    /// `anyOf`, each with those of `report` it has (adjacent pages alike share a region).
    /// `writeProtect` protects the matching pages again, in areas registered for
    /// async write-protect only (the others are skipped).
    public static func regions(pagemap fd: Int32, pid: Int32, from start: UInt64, to end: UInt64,
                               all: PageCategories = [], anyOf: PageCategories = [], report: PageCategories,
                               writeProtect: Bool = false) throws -> [PageRegion] {
        let capacity = 4096
        // struct page_region: start, end, categories.
        var vector = [UInt64](repeating: 0, count: capacity * 3)
        var out: [PageRegion] = []
        var from = start
        while from < end {
            // struct pm_scan_arg: size, flags, start, end, walk_end, vec, vec_len, max_pages,
            // category_inverted, category_mask, category_anyof_mask, return_mask.
            var arg = [UInt64](repeating: 0, count: 12)
            let n = try vector.withUnsafeMutableBytes { vec in
                arg[0] = 96; arg[1] = writeProtect ? writeProtectMatching : 0
                arg[2] = from; arg[3] = end
                arg[5] = UInt64(UInt(bitPattern: vec.baseAddress)); arg[6] = UInt64(capacity)
                arg[9] = all.rawValue; arg[10] = anyOf.rawValue; arg[11] = report.rawValue
                return try arg.withUnsafeMutableBytes { a in
                    try Syscall.raw("PAGEMAP_SCAN of pid \(pid) from \(from.hex)", SyscallNumber.ioctl, Int(fd), Int(bitPattern: request), Int(bitPattern: a.baseAddress))
                }
            }
            out.reserveCapacity(out.count + n)
            for i in 0..<n {
                out.append(PageRegion(start: vector[i * 3], end: vector[i * 3 + 1], categories: PageCategories(rawValue: vector[i * 3 + 2])))
            }
            // walk_end: where the walk stopped (the end, unless the vector filled).
            if arg[4] <= from { break }
            from = arg[4]
        }
        return out
    }
}
