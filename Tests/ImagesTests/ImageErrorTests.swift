import Foundation
import Images
import Testing

@Suite("Image header and framing errors")
struct ImageErrorTests {
    /// Runs `body`, which must throw an ImageError naming `path` and containing `reason`.
    private func expectImageError(path: String, reason: String,
                                  sourceLocation: SourceLocation = #_sourceLocation,
                                  _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected an ImageError mentioning \"\(reason)\"", sourceLocation: sourceLocation)
        } catch let error as ImageError {
            let text = String(describing: error)
            #expect(error.path == path, sourceLocation: sourceLocation)
            #expect(text.contains(path), "description lacks the path: \(text)", sourceLocation: sourceLocation)
            #expect(text.contains(reason), "unexpected reason: \(text)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected ImageError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    private func writeBytes(_ bytes: [UInt8], _ name: String, in dir: URL) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func le(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    @Test("wrong per-type magic")
    func wrongMagic() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("pstree.img").path
        let w = try ImageWriter(path: path, magic: .pstree)
        try w.append(Fixtures.pstree()[0])
        try w.close()
        expectImageError(path: path, reason: "bad magic 0x50273030, expected 0x55053847") {
            _ = try ImageReader(path: path, magic: .core)
        }
    }

    @Test("inventory read as a common-magic image and vice versa")
    func wrongFirstWord() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let inv = dir.appendingPathComponent("inventory.img").path
        let w = try ImageWriter(path: inv, magic: .inventory)
        try w.append(Fixtures.inventory())
        try w.close()
        expectImageError(path: inv, reason: "bad magic 0x58313116, expected 0x54564319") {
            _ = try ImageReader(path: inv, magic: .pstree)
        }
        let stats = try writeBytes(le(0x5510_5940) + le(0x5709_3306), "stats-dump", in: dir)
        expectImageError(path: stats, reason: "expected 0x54564319") {
            _ = try ImageReader(path: stats, magic: .core)
        }
        _ = try ImageReader(path: stats, magic: .stats)
    }

    @Test("truncated header")
    func truncatedHeader() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try writeBytes(le(0x5456_4319) + [0x30, 0x30], "pstree.img", in: dir)
        expectImageError(path: path, reason: "truncated header") {
            _ = try ImageReader(path: path, magic: .pstree)
        }
        let empty = try writeBytes([], "core-1.img", in: dir)
        expectImageError(path: empty, reason: "truncated header") {
            _ = try ImageReader(path: empty, magic: .core)
        }
    }

    @Test("truncated record size")
    func truncatedSize() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try writeBytes(le(0x5456_4319) + le(0x5027_3030) + [0x05, 0x00], "pstree.img", in: dir)
        var r = try ImageReader(path: path, magic: .pstree)
        expectImageError(path: path, reason: "truncated record size") {
            _ = try r.next(PstreeEntry.self)
        }
    }

    @Test("truncated record body")
    func truncatedRecord() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let good: Data = try Fixtures.pstree()[0].serializedBytes()
        let bytes = le(0x5456_4319) + le(0x5027_3030) + le(UInt32(good.count)) + Array(good.prefix(good.count - 2))
        let path = try writeBytes(bytes, "pstree.img", in: dir)
        var r = try ImageReader(path: path, magic: .pstree)
        expectImageError(path: path, reason: "truncated record at offset 8") {
            _ = try r.all(PstreeEntry.self)
        }
    }

    @Test("corrupt record and missing required fields")
    func corruptRecord() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 0xff is a truncated varint key.
        let path = try writeBytes(le(0x5456_4319) + le(0x5027_3030) + le(1) + [0xff], "pstree.img", in: dir)
        var r = try ImageReader(path: path, magic: .pstree)
        expectImageError(path: path, reason: "corrupt pstree_entry record at offset 8") {
            _ = try r.next(PstreeEntry.self)
        }
        // pid only: ppid/pgid/sid are required.
        let partial = try writeBytes(le(0x5456_4319) + le(0x5027_3030) + le(2) + [0x08, 0x01], "pstree-2.img", in: dir)
        var r2 = try ImageReader(path: partial, magic: .pstree)
        expectImageError(path: partial, reason: "corrupt pstree_entry") {
            _ = try r2.next(PstreeEntry.self)
        }
    }

    @Test("writing a record with an unset required field fails with the path")
    func missingRequiredOnWrite() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("pstree.img").path
        let w = try ImageWriter(path: path, magic: .pstree)
        var e = PstreeEntry()
        e.pid = 1
        expectImageError(path: path, reason: "cannot encode pstree_entry") { try w.append(e) }
        try w.close()
        expectImageError(path: path, reason: "append after close") { try w.append(Fixtures.pstree()[0]) }
    }

    @Test("raw payload past the end, empty image for one(), missing file")
    func payloadAndMissing() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("pipes-data.img").path
        let w = try ImageWriter(path: path, magic: .pipesData)
        try w.append(Fixtures.pipeData())
        try w.appendRaw(Fixtures.pipePayload.prefix(4))
        try w.close()
        var r = try ImageReader(path: path, magic: .pipesData)
        let e = try #require(try r.next(PipeDataEntry.self))
        expectImageError(path: path, reason: "truncated payload") { _ = try r.raw(Int(e.bytes)) }

        let empty = dir.appendingPathComponent("fs-1.img").path
        try ImageWriter(path: empty, magic: .fs).close()
        var r2 = try ImageReader(path: empty, magic: .fs)
        expectImageError(path: empty, reason: "empty, expected one fs_entry") { _ = try r2.one(FsEntry.self) }

        let missing = dir.appendingPathComponent("nope.img").path
        expectImageError(path: missing, reason: "cannot read") { _ = try ImageReader(path: missing, magic: .fs) }
        let badDir = dir.appendingPathComponent("no/such/dir/core-1.img").path
        expectImageError(path: badDir, reason: "cannot create") { _ = try ImageWriter(path: badDir, magic: .core) }
    }
}
