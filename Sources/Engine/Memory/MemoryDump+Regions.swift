import Foundation
import LinuxKernel
import ProcFS

/// Which pages of an area hold data, as ranges: the kernel's PAGEMAP_SCAN walks the page
/// tables, so a large area costs a few regions, not a pagemap entry (and Swift work) per
/// page, and the dump's frozen time stays with the pages it copies.
extension MemoryDump {
    /// What the dump asks of each page, and which of them may hold data. `.file` only where
    /// it matters (private file mappings): the kernel looks up each page's struct page for it.
    /// Whether write tracking still covers the area comes with it (one flag per area).
    static let reported: PageCategories = [.present, .swapped, .file, .zeroPage, .guardPage, .writeProtectAllowed]
    static let holding: PageCategories = [.present, .swapped, .guardPage]

    /// Whether this kernel scans with every category the dump asks (guard pages: 6.15).
    static let scanSupported: Bool = {
        let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        // The kernel checks the categories before it walks: an empty range tells.
        return (try? PagemapScan.regions(pagemap: fd, pid: getpid(), from: pageSize, to: 2 * pageSize, anyOf: holding, report: reported)) != nil
    }()

    /// Data runs of `area` (`inParent` where `selection` leaves them to the parent) and
    /// runs of guard pages (read neither). In private file mappings only the pages the
    /// process changed (anonymous copies) count; the file has the rest.
    func pageRuns(pagemap: Int32, pid: Int32, area: MemoryArea, anonymousOnly: Bool, selection: PageSelection) throws -> (data: [PageRun], guards: [(UInt64, Int)]) {
        var data: [(UInt64, UInt64)] = [], guards: [(UInt64, UInt64)] = [], tracked: [(UInt64, UInt64)] = []
        for r in try Self.regions(pagemap: pagemap, pid: pid, area: area, asking: Self.asking(anonymousOnly: anonymousOnly)) {
            let c = r.categories
            if c.contains(.writeProtectAllowed) { tracked.append((r.start, r.end)) }
            if c.contains(.guardPage) { guards.append((r.start, r.end)) }
            else if c.contains(.swapped) { data.append((r.start, r.end)) }
            else if anonymousOnly && c.contains(.file) { continue }
            else if c.contains(.zeroPage) { stats.pagesSkippedZero += (r.end - r.start) / Self.pageSize }
            else { data.append((r.start, r.end)) }
        }
        stats.pagesScanned += area.size / Self.pageSize
        let held = AddressRanges(data)
        func runs(_ r: AddressRanges, inParent: Bool) -> [PageRun] {
            r.ranges.map { PageRun(address: $0.start, length: Int($0.end - $0.start), inParent: inParent) }
        }
        let inParent = selection.inParent(tracked: AddressRanges(tracked))
        let all = runs(held.subtracting(inParent), inParent: false) + runs(held.intersection(inParent), inParent: true)
        return (all.sorted { $0.address < $1.address }, AddressRanges(guards).ranges.map { ($0.start, Int($0.end - $0.start)) })
    }

    static func asking(anonymousOnly: Bool) -> PageCategories {
        anonymousOnly ? reported : reported.subtracting(.file)
    }

    /// The regions of `area` that may hold data, with the categories the dump asks.
    static func regions(pagemap: Int32, pid: Int32, area: MemoryArea, asking: PageCategories = reported) throws -> [PageRegion] {
        guard scanSupported else { return try regionsFromPagemap(pagemap, area: area) }
        return try PagemapScan.regions(pagemap: pagemap, pid: pid, from: area.start, to: area.end, anyOf: holding, report: asking)
    }

    /// The same regions read from the pagemap page by page, for kernels before 6.15.
    static func regionsFromPagemap(_ pagemap: Int32, area: MemoryArea) throws -> [PageRegion] {
        let present: UInt64 = 1 << 63, swapped: UInt64 = 1 << 62, file: UInt64 = 1 << 61, guardPage: UInt64 = 1 << 58
        let total = Int(area.size / pageSize)
        var out: [PageRegion] = []
        var entries = [UInt64](repeating: 0, count: min(total, 65536))
        var index = 0
        while index < total {
            let count = min(entries.count, total - index)
            let offset = off_t((area.start / pageSize + UInt64(index)) * 8)
            let n = entries.withUnsafeMutableBytes { pread(pagemap, $0.baseAddress, count * 8, offset) }
            if n != count * 8 { throw CheckpointError.errno("read pagemap at \(area.start.hex)") }
            for (i, e) in entries[0..<count].enumerated() where e & (present | swapped) != 0 {
                var c: PageCategories = e & present != 0 ? .present : .swapped
                if e & file != 0 { c.insert(.file) }
                if e & guardPage != 0 { c.insert(.guardPage) }
                if e & present != 0 && ZeroPage.isZero(pfn: e & ((1 << 55) - 1)) { c.insert(.zeroPage) }
                // The page tables do not say it; smaps does (areas read without it count as untracked).
                if area.vmFlags.contains("uw") { c.insert(.writeProtectAllowed) }
                let addr = area.start + UInt64(index + i) * pageSize
                if let last = out.last, last.end == addr, last.categories == c { out[out.count - 1].end += pageSize }
                else { out.append(PageRegion(start: addr, end: addr + pageSize, categories: c)) }
            }
            index += count
        }
        return out
    }
}
