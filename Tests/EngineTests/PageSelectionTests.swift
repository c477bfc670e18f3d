import Foundation
import Testing
@testable import Engine

/// Which present page an incremental dump leaves in the parent: only one tracked since
/// the parent, held by it, and not written since.
@Suite("page selection for a dump on parent images")
struct PageSelectionTests {
    /// The pages of [0, end) the selection leaves in the parent, walked as pageRuns walks them.
    func inParent(_ s: PageSelection, tracked: AddressRanges, upTo end: UInt64) -> [UInt64] {
        var cursor = RangeCursor(s.inParent(tracked: tracked), from: 0)
        return stride(from: UInt64(0), to: end, by: 0x1000).filter { cursor.contains($0) }
    }

    @Test("tracked now ∩ registered then ∩ held by the parent − written")
    func sinceParent() {
        let s = PageSelection.sinceParent(written: AddressRanges([(0x3000, 0x4000), (0x8000, 0x9000)]),
                                          registered: AddressRanges([(0x1000, 0x5000), (0x7000, 0xA000)]),
                                          parentHolds: AddressRanges([(0x2000, 0x6000), (0x9000, 0xB000)]))
        // 0x5000: held and unwritten, tracked now, but not registered when the parent was taken.
        #expect(inParent(s, tracked: AddressRanges([(0x0, 0xC000)]), upTo: 0xC000) == [0x2000, 0x4000, 0x9000])
        // Areas no longer tracked (unregistered, moved, mapped anew) keep nothing in the parent.
        #expect(inParent(s, tracked: AddressRanges([(0x0, 0x4000), (0x7000, 0x9000)]), upTo: 0xC000) == [0x2000])
    }

    @Test("a full dump leaves nothing in the parent")
    func all() {
        #expect(inParent(.all, tracked: AddressRanges([(0x0, 0x10000)]), upTo: 0x10000).isEmpty)
    }

    @Test("adjacent and overlapping ranges merge; a cursor started mid-way sees what follows")
    func ranges() {
        let r = AddressRanges([(0x5000, 0x6000), (0x1000, 0x3000), (0x3000, 0x4000), (0x2000, 0x2800)])
        #expect(r.ranges.map { [$0.start, $0.end] } == [[0x1000, 0x4000], [0x5000, 0x6000]])
        var c = RangeCursor(r, from: 0x4800)
        #expect(!c.contains(0x4800) && c.contains(0x5000) && !c.contains(0x6000))
        #expect(r.subtracting(AddressRanges([(0x0, 0x1800), (0x3000, 0x5800)])).ranges.map { [$0.start, $0.end] } == [[0x1800, 0x3000], [0x5800, 0x6000]])
    }
}
