import Foundation

/// The saved pages one address space has not received yet, as sorted disjoint runs that
/// follow the address space: a fork copies them, mremap moves them, munmap and
/// madvise(DONTNEED) drop them (what is dropped must read zero, never the saved page).
struct PendingPages {
    private(set) var runs: [PagePiece]

    init(_ runs: [PagePiece]) { self.runs = runs.filter { $0.length > 0 }.sorted { $0.address < $1.address } }

    var isEmpty: Bool { runs.isEmpty }
    var pageCount: Int { runs.reduce(0) { $0 + $1.length } / SavedPages.page }

    /// The first run ending after `address`.
    private func firstIndex(endingAfter address: UInt64) -> Int {
        var lo = 0, hi = runs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if runs[mid].address + UInt64(runs[mid].length) <= address { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Removes [start, end) and returns the pieces that were in it.
    @discardableResult
    mutating func cut(_ start: UInt64, _ end: UInt64) -> [PagePiece] {
        var i = firstIndex(endingAfter: start)
        var taken: [PagePiece] = []
        while i < runs.count && runs[i].address < end {
            let r = runs[i], rEnd = r.address + UInt64(r.length)
            let s = max(r.address, start), e = min(rEnd, end)
            taken.append(PagePiece(address: s, data: r.data + Int(s - r.address), length: Int(e - s)))
            var keep: [PagePiece] = []
            if r.address < s { keep.append(PagePiece(address: r.address, data: r.data, length: Int(s - r.address))) }
            if e < rEnd { keep.append(PagePiece(address: e, data: r.data + Int(e - r.address), length: Int(rEnd - e))) }
            runs.replaceSubrange(i...i, with: keep)
            i += keep.count
            if e < rEnd { i -= 1; break }
        }
        return taken
    }

    /// The pending pages from `address` on, within its run and at most `limit` bytes; nil
    /// when no page is pending at `address`.
    func piece(at address: UInt64, limit: Int) -> PagePiece? {
        let i = firstIndex(endingAfter: address)
        guard i < runs.count, runs[i].address <= address else { return nil }
        let r = runs[i], offset = Int(address - r.address)
        return PagePiece(address: address, data: r.data + offset, length: min(limit, r.length - offset))
    }

    /// mremap moved [from, from+length) to `to`: its pending pages go along.
    mutating func move(from: UInt64, to: UInt64, length: UInt64) {
        let moved = cut(from, from + length)
        cut(to, to + length)
        runs += moved.map { PagePiece(address: $0.address - from + to, data: $0.data, length: $0.length) }
        runs.sort { $0.address < $1.address }
    }

    /// The next piece of at most `limit` bytes to copy in the background.
    func next(limit: Int) -> PagePiece? {
        guard var first = runs.first else { return nil }
        first.length = min(first.length, limit)
        return first
    }
}
