import Foundation
import Testing
import LinuxKernel
import ProcFS
@testable import Engine

/// The dump finds data pages with PAGEMAP_SCAN (ranges from the kernel); kernels without
/// it (or without guard pages) read /proc/PID/pagemap page by page. Both must see the same
/// pages of a real mapping: written, read (the zero page), untouched, guarded, and in a
/// private file mapping the pages changed and those only read.
@Suite("data pages by PAGEMAP_SCAN and by the pagemap")
struct PagemapScanTests {
    let page = 4096

    func regions(_ start: UnsafeMutableRawPointer, _ length: Int) throws -> (scan: [PageRegion], pagemap: [PageRegion]) {
        let address = UInt64(UInt(bitPattern: start))
        var area = try #require(try ProcMaps.parse(maps: readProcFile("/proc/self/maps")).first { $0.start <= address && address < $0.end })
        // Only the test's mapping: the kernel may have merged it with a neighbour.
        area.start = address
        area.end = address + UInt64(length)
        let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        // Alike neighbours merged: the kernel may cut where its output vector fills.
        func merged(_ r: [PageRegion]) -> [PageRegion] {
            r.reduce(into: []) { out, x in
                if let last = out.last, last.end == x.start, last.categories == x.categories { out[out.count - 1].end = x.end } else { out.append(x) }
            }
        }
        return (merged(try MemoryDump.regions(pagemap: fd, pid: getpid(), area: area)), merged(try MemoryDump.regionsFromPagemap(fd, area: area)))
    }

    @Test("anonymous memory: written, zero-page, untouched and guard pages")
    func anonymous() throws {
        #expect(MemoryDump.scanSupported, "this kernel scans with guard pages (6.15)")
        let length = 64 * page
        let m = try #require(mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        defer { munmap(m, length) }
        for i in [0, 1, 2, 9, 40] { m.storeBytes(of: UInt8(i + 1), toByteOffset: i * page, as: UInt8.self) }
        for i in [3, 4, 20] { _ = m.load(fromByteOffset: i * page, as: UInt8.self) }
        #expect(madvise(m + 12 * page, 3 * page, 102 /* MADV_GUARD_INSTALL */) == 0)
        let (scan, pagemap) = try regions(m, length)
        #expect(scan == pagemap)
        let base = UInt64(UInt(bitPattern: m))
        let data = scan.filter { !$0.categories.contains(.zeroPage) && !$0.categories.contains(.guardPage) }
        #expect(data.map { [($0.start - base) / 4096, ($0.end - base) / 4096] } == [[0, 3], [9, 10], [40, 41]])
        #expect(scan.filter { $0.categories.contains(.guardPage) }.map { ($0.start - base) / 4096 } == [12])
    }

    @Test("a private file mapping: changed pages are anonymous, read ones the file's")
    func privateFile() throws {
        let path = NSTemporaryDirectory() + "pagemap-scan-\(getpid())"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 16 * page)))
        defer { unlink(path) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        let length = 16 * page
        let m = try #require(mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0))
        defer { munmap(m, length) }
        for i in [1, 2, 5] { _ = m.load(fromByteOffset: i * page, as: UInt8.self) }
        m.storeBytes(of: 1, toByteOffset: 2 * page, as: UInt8.self)
        let (scan, pagemap) = try regions(m, length)
        #expect(scan == pagemap)
        let base = UInt64(UInt(bitPattern: m))
        #expect(scan.filter { !$0.categories.contains(.file) }.map { ($0.start - base) / 4096 } == [2])
    }
}
