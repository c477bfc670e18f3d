import Foundation
import Testing
import LinuxKernel
@testable import Engine

/// How a restore's page writes are cut for the cores: every byte once, in order, and
/// shares of about the same size.
@Suite("page writes split over cores")
struct PageSharesTests {
    static let base = UnsafeRawPointer(bitPattern: 0x1000_0000)!

    func piece(_ address: UInt64, pages: Int, at offset: Int) -> PagePiece {
        PagePiece(address: address, data: Self.base + offset, length: pages * 4096)
    }

    /// (address, local offset) of every page, in order.
    func pages(_ pieces: [PagePiece]) -> [(UInt64, Int)] {
        pieces.flatMap { p in (0..<(p.length / 4096)).map { (p.address + UInt64($0 * 4096), p.data - Self.base + $0 * 4096) } }
    }

    @Test("pieces cut at page bounds into shares that cover every page once, in order", arguments: [2, 3, 4])
    func coversEveryPage(workers: Int) {
        let pieces = [piece(0x10000, pages: 5, at: 0), piece(0x40000, pages: 1, at: 5 * 4096), piece(0x90000, pages: 11, at: 6 * 4096)]
        let total = pieces.reduce(0) { $0 + $1.length }
        let shares = RemoteMemory.split(pieces, into: workers, total: total)
        #expect(shares.count == workers)
        let flat = pages(shares.flatMap { $0 })
        let want = pages(pieces)
        #expect(flat.map(\.0) == want.map(\.0))
        #expect(flat.map(\.1) == want.map(\.1))
        for share in shares { #expect(share.allSatisfy { $0.length > 0 && $0.length % 4096 == 0 }) }
        // No share but the last is above the even share; the last takes the rounding.
        let even = (total / workers + 4095) & ~4095
        for share in shares.dropLast() { #expect(share.reduce(0) { $0 + $1.length } == even) }
    }

    @Test("one large piece is cut in two halves")
    func onePiece() {
        let shares = RemoteMemory.split([piece(0x100000, pages: 4096, at: 0)], into: 2, total: 4096 * 4096)
        #expect(shares.map { $0.map(\.address) } == [[0x100000], [0x100000 + 2048 * 4096]])
        #expect(shares.map { $0.map(\.length) } == [[2048 * 4096], [2048 * 4096]])
    }
}
