import Foundation

/// Sorted, disjoint address ranges [start, end), searched by bisection.
struct AddressRanges {
    private(set) var ranges: [(start: UInt64, end: UInt64)] = []

    init(_ ranges: [(UInt64, UInt64)] = []) {
        var merged: [(start: UInt64, end: UInt64)] = []
        for (s, e) in ranges.sorted(by: { $0.0 < $1.0 }) where e > s {
            if let last = merged.last, last.end >= s { merged[merged.count - 1].end = max(last.end, e) } else { merged.append((s, e)) }
        }
        self.ranges = merged
    }

    func contains(_ addr: UInt64) -> Bool {
        var lo = 0, hi = ranges.count
        while lo < hi { let mid = (lo + hi) / 2; if ranges[mid].start <= addr { lo = mid + 1 } else { hi = mid } }
        return lo > 0 && addr < ranges[lo - 1].end
    }

    var isEmpty: Bool { ranges.isEmpty }

    /// The addresses in both.
    func intersection(_ other: AddressRanges) -> AddressRanges {
        var out: [(UInt64, UInt64)] = []
        var i = 0, j = 0
        while i < ranges.count && j < other.ranges.count {
            let s = max(ranges[i].start, other.ranges[j].start), e = min(ranges[i].end, other.ranges[j].end)
            if s < e { out.append((s, e)) }
            if ranges[i].end < other.ranges[j].end { i += 1 } else { j += 1 }
        }
        return AddressRanges(out)
    }

    /// The addresses in these and not in `other`.
    func subtracting(_ other: AddressRanges) -> AddressRanges {
        var out: [(UInt64, UInt64)] = []
        var j = 0
        for r in ranges {
            var cursor = r.start
            while j < other.ranges.count && other.ranges[j].end <= cursor { j += 1 }
            var k = j
            while k < other.ranges.count && other.ranges[k].start < r.end {
                if other.ranges[k].start > cursor { out.append((cursor, other.ranges[k].start)) }
                cursor = max(cursor, other.ranges[k].end)
                k += 1
            }
            if cursor < r.end { out.append((cursor, r.end)) }
        }
        return AddressRanges(out)
    }
}

/// Membership of increasing addresses in `AddressRanges`, in amortized constant time.
struct RangeCursor {
    private let ranges: [(start: UInt64, end: UInt64)]
    private var index: Int

    /// For addresses from `start` on.
    init(_ ranges: AddressRanges, from start: UInt64) {
        self.ranges = ranges.ranges
        var lo = 0, hi = self.ranges.count
        while lo < hi { let mid = (lo + hi) / 2; if self.ranges[mid].end <= start { lo = mid + 1 } else { hi = mid } }
        index = lo
    }

    mutating func contains(_ addr: UInt64) -> Bool {
        while index < ranges.count && ranges[index].end <= addr { index += 1 }
        return index < ranges.count && ranges[index].start <= addr
    }
}

/// Which present pages of one process travel with this dump. `all`: every one. `sinceParent`:
/// a page stays in the parent images only when its area has been write-tracked since the
/// parent was taken (registered then, and still registered: the page scan says so), it
/// was not written since, and the parent chain really holds it.
struct PageSelection {
    /// Pages the parent chain holds that were not written since.
    let unchanged: AddressRanges
    /// Where write tracking was registered when the parent was taken.
    let registered: AddressRanges

    static let all = PageSelection(unchanged: AddressRanges(), registered: AddressRanges())

    static func sinceParent(written: AddressRanges, registered: AddressRanges, parentHolds: AddressRanges) -> PageSelection {
        PageSelection(unchanged: parentHolds.subtracting(written), registered: registered)
    }

    /// The pages left in the parent, of those in `tracked` (areas still write-tracked now).
    func inParent(tracked: AddressRanges) -> AddressRanges {
        unchanged.isEmpty ? AddressRanges() : tracked.intersection(registered).intersection(unchanged)
    }
}
