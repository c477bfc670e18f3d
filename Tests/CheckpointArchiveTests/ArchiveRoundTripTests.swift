import CheckpointArchive
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Checkpoint archive round trip")
struct ArchiveRoundTripTests {
    @Test("pack and unpack keep every object, for each compression", arguments: ArchiveCompression.allCases)
    func roundTrip(compression: ArchiveCompression) throws {
        let scratch = try Scratch()
        let source = scratch.sub("source"), archive = scratch.sub("ckpt.tar"), target = scratch.sub("restored")
        try Fixture.make(at: source, sparse: true)
        // Progress prints only on a terminal; here it must simply stay out of the way.
        try CheckpointArchive.pack(directory: source, to: archive, compression: compression, progress: ProgressReporter(label: "pack"))

        let status = try lstatOf(archive)
        #expect(status.st_mode & 0o777 == 0o600)
        #expect(status.st_size < 1 << 20, "the 100 MiB hole is not stored: \(status.st_size) bytes")
        try expectCompression(archive, compression)

        try CheckpointArchive.unpack(archive, into: target, progress: ProgressReporter(label: "unpack"))
        try Fixture.expectSame(source, target)
        let sparse = try lstatOf(target + "/checkpoint/pages-1.img")
        #expect(sparse.st_size == Fixture.sparseSize)
        #expect(sparse.st_blocks * 512 < 1 << 20, "restored sparse file uses \(sparse.st_blocks) blocks")
        #expect(!FileManager.default.fileExists(atPath: target + "/" + CheckpointArchive.manifestName))
        #expect(scratch.listing() == ["ckpt.tar", "restored", "source"], "no temporary left beside")
    }

    private func expectCompression(_ archive: String, _ compression: ArchiveCompression) throws {
        switch compression {
        case .zstd:
            #expect(try leadingBytes(archive, 4) == [0x28, 0xB5, 0x2F, 0xFD])
            try require(Cmd.run(["/usr/bin/zstd", "-t", "-q", archive]), "zstd -t")
        case .gzip:
            #expect(try leadingBytes(archive, 2) == [0x1F, 0x8B])
            try require(Cmd.run(["/bin/gzip", "-t", archive]), "gzip -t")
        case .none:
            #expect(Array(try leadingBytes(archive, 262).suffix(5)) == Array("ustar".utf8))
        }
    }

    @Test("GNU tar lists and extracts our archives (tar --zstd -tf for podman's default)", arguments: ArchiveCompression.allCases)
    func gnuTarReadsIt(compression: ArchiveCompression) throws {
        let scratch = try Scratch()
        let source = scratch.sub("source"), archive = scratch.sub("ckpt.tar"), out = scratch.sub("gnu")
        try Fixture.make(at: source, sparse: true)
        try CheckpointArchive.pack(directory: source, to: archive, compression: compression, progress: nil)
        let flags = compression == .zstd ? ["--zstd"] : []  // gzip and plain: tar detects them itself
        let listing = Cmd.run(["/bin/tar"] + flags + ["-tf", archive])
        try require(listing, "tar -tf")
        #expect(listing.err.isEmpty, "tar warns: \(listing.err)")
        let names = listing.out.split(separator: "\n").map(String.init)
        #expect(names.contains("checkpoint/nested/deeper/deep.txt"))
        #expect(names.contains("checkpoint/pages-1.img"))
        #expect(names.last == CheckpointArchive.manifestName)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        try require(Cmd.run(["/bin/tar"] + flags + ["-xf", archive, "-C", out]), "tar -xf")
        #expect(FileManager.default.contentsEqual(atPath: source + "/checkpoint/pages-1.img", andPath: out + "/checkpoint/pages-1.img"))
    }

    @Test("list gives names, kinds and sizes from the headers")
    func listMembers() throws {
        let scratch = try Scratch()
        let source = scratch.sub("source"), archive = scratch.sub("ckpt.tar")
        try Fixture.make(at: source, sparse: true)
        try CheckpointArchive.pack(directory: source, to: archive, compression: .gzip, progress: nil)
        let members = try CheckpointArchive.list(archive)
        #expect(members.map(\.name) == ["checkpoint", "checkpoint/all-hole.img", "checkpoint/deep-link", "checkpoint/nested",
                                        "checkpoint/nested/deeper", "checkpoint/nested/deeper/deep.txt", "checkpoint/pages-1.img",
                                        "checkpoint/run-hardlink.sh", "checkpoint/run.sh", "checkpoint/tail-hole.img", "config.dump", "empty"])
        #expect(members.first { $0.name == "checkpoint/pages-1.img" } == ArchiveMember(name: "checkpoint/pages-1.img", kind: .file, size: Fixture.sparseSize))
        #expect(members.first { $0.name == "checkpoint/deep-link" }?.kind == .symlink)
        #expect(members.first { $0.name == "checkpoint/run-hardlink.sh" }?.kind == .file, "first name of the inode in order")
        #expect(members.first { $0.name == "checkpoint/run.sh" }?.kind == .hardlink)
    }

    @Test("extract writes only the wanted members")
    func extractWanted() throws {
        let scratch = try Scratch()
        let source = scratch.sub("source"), archive = scratch.sub("ckpt.tar"), target = scratch.sub("inspect")
        try Fixture.make(at: source, sparse: true)
        try CheckpointArchive.pack(directory: source, to: archive, compression: .zstd, progress: nil)
        try CheckpointArchive.extract(archive, into: target) { $0 == "config.dump" || $0.hasSuffix("deep.txt") }
        let written = try FileManager.default.subpathsOfDirectory(atPath: target).sorted()
        #expect(written == ["checkpoint", "checkpoint/nested", "checkpoint/nested/deeper", "checkpoint/nested/deeper/deep.txt", "config.dump"])
        #expect(try String(contentsOfFile: target + "/config.dump", encoding: .utf8) == "{\"id\": \"archive-test\"}\n")
    }

    @Test("packing refuses what it cannot carry and leaves no file")
    func packRefusals() throws {
        let scratch = try Scratch()
        let source = scratch.sub("source")
        try Fixture.make(at: source, sparse: false)
        #expect(throws: (any Error).self) { try CheckpointArchive.pack(directory: scratch.sub("missing"), to: scratch.sub("a.tar")) }
        let inside = source + "/self.tar"
        #expect(throws: (any Error).self) { try CheckpointArchive.pack(directory: source, to: inside) }
        try write("{}", to: source + "/" + CheckpointArchive.manifestName)
        let reserved = #expect(throws: (any Error).self) { try CheckpointArchive.pack(directory: source, to: scratch.sub("r.tar")) }
        #expect("\(reserved!)".contains("is reserved for the archive's manifest"))
        unlink(source + "/" + CheckpointArchive.manifestName)
        mkfifo(source + "/fifo", 0o600)
        let error = #expect(throws: (any Error).self) { try CheckpointArchive.pack(directory: source, to: scratch.sub("b.tar")) }
        #expect("\(error!)".contains("FIFO"))
        #expect(scratch.listing() == ["source"])
    }
}
