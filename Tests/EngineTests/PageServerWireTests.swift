import Foundation
import Testing
import LinuxKernel
import Images
@testable import Engine

/// CRIU's page_xfer encoding, and our sender against our receiver over a real socket with
/// runs left in a parent image (pre-dump's), which no CRIU here can send: it needs
/// soft-dirty tracking this kernel lacks.
@Suite("page server wire", .serialized)
struct PageServerWireTests {
    @Test("commands carry PE_* flags above 16 bits; dst_id is the id above 8 bits of type, old CRIUs' types decode")
    func encoding() throws {
        let c = PageServerCommand(PageServerCommand.addWithFlags, flags: PageFlags.present, nrPages: 3, vaddr: 0x7000, dstID: 9)
        #expect(c.cmd == 0x0004_0006 && c.command == 6 && c.flags == 4)
        #expect(PageServerCommand(words: c.words) == c)
        #expect(try PageServerCommand.destination(.pagemap(1234)) == 1234 << 8 | 1)
        #expect(try PageServerCommand.destination(.pagemapShmem(77)) == 77 << 8 | 2)
        #expect(PageServerCommand.pagemap(1234 << 8 | 11) == .pagemap(1234))      // CRIU 1.3 .. 3.0
        #expect(PageServerCommand.pagemap(77 << 8 | 34) == .pagemapShmem(77))     // CRIU 2.x, 3.0
        #expect(PageServerCommand.pagemap(5 << 8 | 3) == nil)
        #expect(MemoryLayout<(UInt64, UInt64, UInt64, UInt64)>.size == PageServerCommand.size)
    }

    /// A server on a free port of 127.0.0.1 serving one session on a thread of its own.
    final class ServerThread: @unchecked Sendable {
        let server: PageServer
        private(set) var error: Error?
        private let done = DispatchSemaphore(value: 0)
        init(_ images: ImageDirectory, parent: String?) throws {
            server = try PageServer(images: images, address: PageServerAddress(host: "127.0.0.1", port: 0), parent: parent, log: .silent)
            Thread { [self] in
                do { try server.serve() } catch { self.error = error }
                done.signal()
            }.start()
        }
        func wait() -> Bool { done.wait(timeout: .now() + 10) == .success }
    }

    func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "ps-wire-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Page bytes that name their own address.
    static func fill(_ ranges: [(UInt64, Int)], _ buffer: UnsafeMutableRawPointer) {
        var at = 0
        for (addr, len) in ranges {
            for off in stride(from: 0, to: len, by: 8) { (buffer + at + off).storeBytes(of: addr + UInt64(off), as: UInt64.self) }
            at += len
        }
    }

    @Test("present runs and runs in the parent arrive as CRIU's page server writes them")
    func parentRuns() throws {
        let dir = try scratch(), prev = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: prev) }
        // The parent holds this pagemap: OPEN2 answers yes.
        var head = PagemapHead()
        head.pagesID = 1
        let w = try ImageDirectory(path: prev).writer(.pagemap(42))
        try w.append(head)
        try w.close()
        let images = ImageDirectory(path: dir)
        let st = try ServerThread(images, parent: prev)
        let pageSize = Int(MemoryDump.pageSize)
        // More than one chunk, so the run's pages span sends.
        let big = PageChunks.size + 3 * pageSize
        let runs = [PageRun(address: 0x10000, length: 2 * pageSize), PageRun(address: 0x20000, length: pageSize, inParent: true),
                    PageRun(address: 0x30000, length: big), PageRun(address: 0x900000, length: pageSize, inParent: true)]
        let transfer = try RemotePageTransfer(connectingTo: PageServerAddress(host: "127.0.0.1", port: st.server.port))
        let sent = try transfer.send(.pagemap(42), runs: runs) { ranges, buffer in Self.fill(ranges, buffer) }
        try transfer.finish()
        #expect(st.wait() && st.error == nil, "server: \(st.error.map { "\($0)" } ?? "still running")")
        #expect(sent == 2 * pageSize + big)

        var r = try images.reader(.pagemap(42))
        let received = try r.one(PagemapHead.self)
        let entries = try r.all(PagemapEntry.self)
        #expect(received.pagesID == 0x10001)
        #expect(entries.map { [$0.vaddr, $0.nrPages, UInt64($0.flags)] } == runs.map {
            [$0.address, UInt64($0.length / pageSize), UInt64($0.inParent ? PageFlags.parent : PageFlags.present)]
        })
        let pages = try #require(FileManager.default.contents(atPath: images.file(.pages(0x10001))))
        let expected = UnsafeMutableRawPointer.allocate(byteCount: sent, alignment: 8)
        defer { expected.deallocate() }
        Self.fill([(0x10000, 2 * pageSize), (0x30000, big)], expected)
        #expect(pages == Data(bytes: expected, count: sent))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/parent")) == prev)
    }

    static let criu = "/var/cache/ocicheckpoint/criu-4.2/criu/criu"

    @Test("CRIU 4.2's page server takes our runs in the parent (it checks each is in its parent image)",
          .enabled(if: FileManager.default.isExecutableFile(atPath: criu), "no CRIU 4.2 at \(criu)"))
    func criuServerParentRuns() throws {
        let dir = try scratch(), prev = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: prev) }
        let pageSize = Int(MemoryDump.pageSize)
        // The parent: pagemap-42 with the two pages the new dump leaves there, and their bytes.
        var head = PagemapHead()
        head.pagesID = 1
        let w = try ImageDirectory(path: prev).writer(.pagemap(42))
        try w.append(head)
        for a: UInt64 in [0x20000, 0x900000] { try w.append(PagemapEntry(vaddr: a, nrPages: 1, flags: PageFlags.present)) }
        try w.close()
        try Data(count: 2 * pageSize).write(to: URL(fileURLWithPath: ImageDirectory(path: prev).file(.pages(1))))

        let probe = try PageServer(images: ImageDirectory(path: dir), address: PageServerAddress(host: "127.0.0.1", port: 0), parent: nil, log: .silent)
        let port = probe.port
        _ = consume probe
        let ps = Process()
        ps.executableURL = URL(fileURLWithPath: Self.criu)
        ps.arguments = ["page-server", "-D", dir, "--address", "127.0.0.1", "--port", "\(port)", "--prev-images-dir", prev,
                        "-o", "ps.log", "-v4"]
        try ps.run()
        defer { if ps.isRunning { ps.terminate() } }
        var transfer: RemotePageTransfer?
        for _ in 0..<200 where transfer == nil {
            transfer = try? RemotePageTransfer(connectingTo: PageServerAddress(host: "127.0.0.1", port: port))
            if transfer == nil { usleep(20_000) }
        }
        let t = try #require(transfer, "CRIU's page server does not listen on \(port)")
        let runs = [PageRun(address: 0x10000, length: 2 * pageSize), PageRun(address: 0x20000, length: pageSize, inParent: true),
                    PageRun(address: 0x30000, length: pageSize), PageRun(address: 0x900000, length: pageSize, inParent: true)]
        let sent = try t.send(.pagemap(42), runs: runs) { ranges, buffer in Self.fill(ranges, buffer) }
        try t.finish()
        ps.waitUntilExit()
        #expect(ps.terminationStatus == 0, "CRIU's page server: \((try? String(contentsOfFile: dir + "/ps.log", encoding: .utf8))?.suffix(2000) ?? "")")

        let images = ImageDirectory(path: dir)
        var r = try images.reader(.pagemap(42))
        let received = try r.one(PagemapHead.self)
        let entries = try r.all(PagemapEntry.self)
        #expect(entries.map { [$0.vaddr, $0.nrPages, UInt64($0.flags)] } == runs.map {
            [$0.address, UInt64($0.length / pageSize), UInt64($0.inParent ? PageFlags.parent : PageFlags.present)]
        })
        let pages = try #require(FileManager.default.contents(atPath: images.file(.pages(received.pagesID))))
        let expected = UnsafeMutableRawPointer.allocate(byteCount: sent, alignment: 8)
        defer { expected.deallocate() }
        Self.fill([(0x10000, 2 * pageSize), (0x30000, pageSize)], expected)
        #expect(pages == Data(bytes: expected, count: sent))
    }

    @Test("runs in the parent are refused when the server has no parent image for the pagemap")
    func noParent() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let st = try ServerThread(ImageDirectory(path: dir), parent: nil)
        let transfer = try RemotePageTransfer(connectingTo: PageServerAddress(host: "127.0.0.1", port: st.server.port))
        #expect(throws: CheckpointError.self) {
            _ = try transfer.send(.pagemap(7), runs: [PageRun(address: 0x1000, length: 4096, inParent: true)]) { _, _ in }
        }
        try transfer.finish()
        #expect(st.wait() && st.error == nil, "server: \(st.error.map { "\($0)" } ?? "still running")")
    }
}
