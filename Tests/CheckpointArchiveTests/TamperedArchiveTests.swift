import CheckpointArchive
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Every refusal must name the archive and the reason on one line, and leave nothing: no
/// target, no temporary sibling, nothing written outside.
@Suite("Checkpoint archive refuses damaged and hostile archives")
struct TamperedArchiveTests {
    /// A good plain archive of a small tree, and a directory outside the target that a
    /// hostile archive would like to write into.
    private func goodArchive(_ scratch: Scratch) throws -> String {
        let source = scratch.sub("source"), archive = scratch.sub("good.tar")
        try Fixture.make(at: source, sparse: false)
        try CheckpointArchive.pack(directory: source, to: archive, compression: .none, progress: nil)
        try FileManager.default.createDirectory(atPath: scratch.sub("outside"), withIntermediateDirectories: false)
        return archive
    }

    private func expectRefused(_ archive: String, _ scratch: Scratch, saying reason: String) {
        let before = scratch.listing()
        let error = #expect(throws: (any Error).self) {
            try CheckpointArchive.unpack(archive, into: scratch.sub("target"), progress: nil)
        }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains(reason), "message: \(message)")
        #expect(message.contains(archive) && !message.contains("\n"), "one line naming the archive: \(message)")
        #expect(scratch.listing() == before, "nothing left beside the target")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: scratch.sub("outside"))) == [], "nothing written outside")
    }

    @Test("a flipped byte in a member's data")
    func flippedByte() throws {
        let scratch = try Scratch()
        let archive = try goodArchive(scratch)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        let at = try #require(bytes.range(of: Data("deep content marker".utf8))).lowerBound
        bytes[at] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: archive))
        expectRefused(archive, scratch, saying: "member checkpoint/nested/deeper/deep.txt does not match its SHA-256 in the manifest")
    }

    @Test("a truncated archive: inside a member, inside the manifest, and a cut zstd stream")
    func truncated() throws {
        let scratch = try Scratch()
        let archive = try goodArchive(scratch)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        for marker in ["deep content marker", "ocicheckpoint-archive"] {
            let at = try #require(bytes.range(of: Data(marker.utf8))).lowerBound
            try bytes.prefix(at + 5).write(to: URL(fileURLWithPath: scratch.sub("cut.tar")))
            expectRefused(scratch.sub("cut.tar"), scratch, saying: "refused")
        }
        let zstd = scratch.sub("cut.tar.zst")
        try CheckpointArchive.pack(directory: scratch.sub("source"), to: zstd, compression: .zstd, progress: nil)
        truncate(zstd, off_t(try lstatOf(zstd).st_size / 2))
        expectRefused(zstd, scratch, saying: "refused")
    }

    @Test("an archive without its manifest")
    func manifestMissing() throws {
        let scratch = try Scratch()
        let archive = try goodArchive(scratch)
        try BadArchive.craft(from: archive, to: scratch.sub("bad.tar"), .drop(CheckpointArchive.manifestName))
        expectRefused(scratch.sub("bad.tar"), scratch, saying: "it has no manifest")
    }

    @Test("a member removed")
    func memberRemoved() throws {
        let scratch = try Scratch()
        let archive = try goodArchive(scratch)
        try BadArchive.craft(from: archive, to: scratch.sub("bad.tar"), .drop("config.dump"))
        expectRefused(scratch.sub("bad.tar"), scratch, saying: "member config.dump listed in the manifest is missing")
    }

    @Test("a member the manifest does not list, and one after the manifest")
    func memberAdded() throws {
        let scratch = try Scratch()
        let archive = try goodArchive(scratch)
        try BadArchive.craft(from: archive, to: scratch.sub("bad.tar"), .insertBeforeManifest(["file:checkpoint/extra.img"]))
        expectRefused(scratch.sub("bad.tar"), scratch, saying: "member checkpoint/extra.img is not in the manifest")
        try BadArchive.craft(from: archive, to: scratch.sub("late.tar"), .append(["file:late.img"]))
        expectRefused(scratch.sub("late.tar"), scratch, saying: "member late.img follows the manifest")
    }

    @Test("a '../' member and an absolute path")
    func escapingNames() throws {
        let scratch = try Scratch()
        let archive = try goodArchive(scratch)
        try BadArchive.craft(from: archive, to: scratch.sub("dotdot.tar"), .insertBeforeManifest(["file:../outside/escaped"]))
        expectRefused(scratch.sub("dotdot.tar"), scratch, saying: "member ../outside/escaped has a '..' component")
        let absolute = scratch.sub("outside") + "/absolute"
        try BadArchive.craft(from: archive, to: scratch.sub("absolute.tar"), .insertBeforeManifest(["file:" + absolute]))
        expectRefused(scratch.sub("absolute.tar"), scratch, saying: "member \(absolute) has an absolute path")
    }

    @Test("a symlink pointing out, then a file written through it")
    func symlinkOut() throws {
        let scratch = try Scratch()
        let archive = try goodArchive(scratch)
        try BadArchive.craft(from: archive, to: scratch.sub("abs.tar"),
                             .insertBeforeManifest(["symlink:evil:" + scratch.sub("outside"), "file:evil/pwned"]))
        expectRefused(scratch.sub("abs.tar"), scratch, saying: "symlink evil points to the absolute path")
        try BadArchive.craft(from: archive, to: scratch.sub("rel.tar"),
                             .insertBeforeManifest(["symlink:evil:../outside", "file:evil/pwned"]))
        expectRefused(scratch.sub("rel.tar"), scratch, saying: "symlink evil -> ../outside points outside the archive")
    }

    @Test("a link through another link: passes the name check, caught by the kernel or the symlink guard")
    func symlinkThroughSymlink() throws {
        let scratch = try Scratch()
        let archive = try goodArchive(scratch)
        // d -> "." and l -> "d/../outside" read as inside by name, but resolve to scratch/outside.
        try BadArchive.craft(from: archive, to: scratch.sub("chain.tar"),
                             .insertBeforeManifest(["symlink:d:.", "symlink:l:d/../outside"]))
        expectRefused(scratch.sub("chain.tar"), scratch, saying: "symlink l -> d/../outside points outside the archive")
        try BadArchive.craft(from: archive, to: scratch.sub("through.tar"),
                             .insertBeforeManifest(["symlink:d:.", "symlink:l:d/../outside", "file:l/pwned"]))
        expectRefused(scratch.sub("through.tar"), scratch, saying: "l/pwned")
    }

    @Test("a hardlink to a file outside")
    func hardlinkOut() throws {
        let scratch = try Scratch()
        let archive = try goodArchive(scratch)
        try write("secret\n", to: scratch.sub("outside") + "/secret")
        defer { unlink(scratch.sub("outside") + "/secret") }
        try BadArchive.craft(from: archive, to: scratch.sub("hard.tar"), .insertBeforeManifest(["hardlink:h:../outside/secret"]))
        let error = #expect(throws: (any Error).self) {
            try CheckpointArchive.unpack(scratch.sub("hard.tar"), into: scratch.sub("target"), progress: nil)
        }
        #expect("\(error!)".contains("hardlink h -> ../outside/secret does not name an earlier file of the archive"))
        #expect(try lstatOf(scratch.sub("outside") + "/secret").st_nlink == 1)
        try BadArchive.craft(from: archive, to: scratch.sub("abshard.tar"), .insertBeforeManifest(["hardlink:h:/etc/passwd"]))
        #expect(throws: (any Error).self) {
            try CheckpointArchive.unpack(scratch.sub("abshard.tar"), into: scratch.sub("target"), progress: nil)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("target")))
    }

    @Test("not an archive, a missing file, and a target that is not empty")
    func badInputs() throws {
        let scratch = try Scratch()
        let archive = try goodArchive(scratch)
        try write(String(repeating: "not a tar archive\n", count: 100), to: scratch.sub("junk.tar"))
        expectRefused(scratch.sub("junk.tar"), scratch, saying: "refused")
        #expect(throws: (any Error).self) { try CheckpointArchive.unpack(scratch.sub("none.tar"), into: scratch.sub("target")) }
        let error = #expect(throws: (any Error).self) { try CheckpointArchive.unpack(archive, into: scratch.sub("source")) }
        #expect("\(error!)".contains("exists and is not an empty directory"))
        try FileManager.default.createDirectory(atPath: scratch.sub("empty-target"), withIntermediateDirectories: false)
        try CheckpointArchive.unpack(archive, into: scratch.sub("empty-target"))
        #expect(FileManager.default.fileExists(atPath: scratch.sub("empty-target") + "/config.dump"))
    }
}
