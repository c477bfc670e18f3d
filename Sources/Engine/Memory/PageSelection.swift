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
}

/// Which present pages of one process travel with this dump. `all`: every one. `sinceParent`:
/// a page stays in the parent images only when its area has been write-tracked since the
/// parent was taken, it was not written since, and the parent chain really holds it.
enum PageSelection {
    case all
    case sinceParent(written: AddressRanges, tracked: AddressRanges, parentHolds: AddressRanges)

    func inParent(_ addr: UInt64) -> Bool {
        guard case .sinceParent(let written, let tracked, let parentHolds) = self else { return false }
        return tracked.contains(addr) && parentHolds.contains(addr) && !written.contains(addr)
    }
}
