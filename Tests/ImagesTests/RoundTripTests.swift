import Foundation
import Images
import Testing

@Suite("Image round trips")
struct RoundTripTests {
    @Test("pstree with two entries")
    func pstree() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("pstree.img").path

        let w = try ImageWriter(path: path, magic: .pstree)
        for e in Fixtures.pstree() { try w.append(e) }
        try w.close()

        var r = try ImageReader(path: path, magic: .pstree)
        let back = try r.all(PstreeEntry.self)
        #expect(back == Fixtures.pstree())
        #expect(back.count == 2)
        #expect(back[1].ppid == Fixtures.pid)
        #expect(r.atEnd)
    }

    @Test("core with x86 registers, FPU state and task core fields")
    func core() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("core-\(Fixtures.pid).img").path

        let core = Fixtures.core()
        let w = try ImageWriter(path: path, magic: .core)
        try w.append(core)
        try w.close()

        var r = try ImageReader(path: path, magic: .core)
        let back = try r.one(CoreEntry.self)
        #expect(back == core)
        #expect(back.mtype == .x8664)
        #expect(back.threadInfo.gpregs.ip == 0x40_1000)
        #expect(back.threadInfo.gpregs.ax == 0xffff_ffff_ffff_fdfc)
        #expect(back.threadInfo.gpregs.mode == .native)
        #expect(back.threadInfo.fpregs.mxcsr == 0x1f80)
        #expect(back.threadInfo.fpregs.xsave.ymmhSpace.count == 64)
        #expect(back.tc.comm == "sleeper")
        #expect(back.tc.oomScoreAdj == -17)
        #expect(back.tc.rlimits.rlimits.first?.max == 4096)
        #expect(back.threadCore.schedNice == -5)
        #expect(back.threadCore.creds.groups == [1000, 27])
        #expect(!back.hasIds || back.ids.filesID == 2)
        #expect(try r.next(CoreEntry.self) == nil)
    }

    @Test("pagemap: head, then entries")
    func pagemap() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("pagemap-\(Fixtures.pid).img").path

        let w = try ImageWriter(path: path, magic: .pagemap)
        try w.append(Fixtures.pagemapHead())
        for e in Fixtures.pagemapEntries() { try w.append(e) }
        try w.close()

        var r = try ImageReader(path: path, magic: .pagemap)
        #expect(try r.one(PagemapHead.self).pagesID == 1)
        let entries = try r.all(PagemapEntry.self)
        #expect(entries == Fixtures.pagemapEntries())
        #expect(entries.map(\.nrPages) == [3, 1])
        #expect(entries.allSatisfy { $0.flags & 4 != 0 })
    }

    @Test("pipes-data: entry followed by its raw payload")
    func pipesData() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("pipes-data.img").path

        let second = Data((0..<300).map { UInt8($0 & 0xff) })
        var entry2 = PipeDataEntry()
        entry2.pipeID = 99
        entry2.bytes = UInt32(second.count)

        let w = try ImageWriter(path: path, magic: .pipesData)
        try w.append(Fixtures.pipeData())
        try w.appendRaw(Fixtures.pipePayload)
        try w.append(entry2)
        try w.appendRaw(second)
        try w.close()

        var r = try ImageReader(path: path, magic: .pipesData)
        var got: [(PipeDataEntry, Data)] = []
        while let e = try r.next(PipeDataEntry.self) {
            got.append((e, try r.raw(Int(e.bytes))))
        }
        #expect(got.count == 2)
        #expect(got[0].0 == Fixtures.pipeData())
        #expect(got[0].1 == Fixtures.pipePayload)
        #expect(got[1].0 == entry2)
        #expect(got[1].1 == second)
    }

    @Test("inventory has no common magic, stats has the service magic")
    func headers() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let inv = dir.appendingPathComponent("inventory.img").path
        let stats = dir.appendingPathComponent("stats-dump").path

        let w1 = try ImageWriter(path: inv, magic: .inventory)
        try w1.append(Fixtures.inventory())
        try w1.close()
        let w2 = try ImageWriter(path: stats, magic: .stats)
        try w2.append(Fixtures.stats())
        try w2.close()

        let invBytes = try #require(FileManager.default.contents(atPath: inv))
        #expect(Array(invBytes.prefix(4)) == [0x16, 0x31, 0x31, 0x58])
        let statsBytes = try #require(FileManager.default.contents(atPath: stats))
        #expect(Array(statsBytes.prefix(8)) == [0x40, 0x59, 0x10, 0x55, 0x06, 0x33, 0x09, 0x57])

        var r1 = try ImageReader(path: inv, magic: .inventory)
        #expect(try r1.one(InventoryEntry.self) == Fixtures.inventory())
        var r2 = try ImageReader(path: stats, magic: .stats)
        #expect(try r2.one(StatsEntry.self).dump.pagesScanned == 4242)
    }

    @Test("records written by protobuf are read back with unknown fields kept")
    func unknownFields() throws {
        // A newer CRIU may add fields; they must survive a read/write cycle.
        var newer = Fixtures.pstree()[0]
        try newer.merge(serializedBytes: Data([0xf8, 0x06, 0x07]))  // field 111, varint 7
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("pstree.img").path
        let w = try ImageWriter(path: path, magic: .pstree)
        try w.append(newer)
        try w.close()
        var r = try ImageReader(path: path, magic: .pstree)
        let back = try r.one(PstreeEntry.self)
        #expect(back.unknownFields.data == Data([0xf8, 0x06, 0x07]))
        #expect(back == newer)
    }
}
