// A plain image directory signed by `dump --sign KEY` (a manifest CRIU ignores) and checked
// by `restore -D DIR --verify PUBKEY` before anything runs: a flipped byte in pages-1.img
// is refused naming the file and the block; the untouched images restore.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Signed image directories", .serialized)
struct SignedImagesWorkloadTests {
    static func oc(_ args: [String]) -> Output { Cmd.run([Paths.binary] + args, timeout: 60) }

    @Test("dump --sign, a flipped byte in pages-1.img refused by restore -D --verify; untouched restores")
    func flippedPageByteRefused() throws {
        let scratch = try Scratch()
        let key = scratch.sub("k.pem"), pub = scratch.sub("k.pub"), otherKey = scratch.sub("o.pem"), otherPub = scratch.sub("o.pub")
        for (k, p) in [(key, pub), (otherKey, otherPub)] {
            try #require(Cmd.run(["/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", k]).ok)
            try #require(Cmd.run(["/usr/bin/openssl", "pkey", "-in", k, "-pubout", "-out", p]).ok)
        }
        let s = try CriuCommandLineTests.sleeper()
        defer { s.stop() }
        let child = try #require(CriuCommandLineTests().sleepingTask(s.pid))
        let images = scratch.sub("img")
        // A log named by -o in the image directory is written on after the seal: it is left out.
        let dump = Self.oc(["dump", "-t", "\(child)", "-D", images, "--sign", key, "-v4", "-o", "dump.txt"])
        try #require(dump.ok, "dump: \(dump)")
        #expect(FileManager.default.fileExists(atPath: images + "/ocicheckpoint.manifest.json"))
        #expect(FileManager.default.fileExists(atPath: images + "/ocicheckpoint.manifest.sig"))
        s.stop()
        try #require(waitFor(10) { access("/proc/\(child)", F_OK) != 0 }, "pid \(child) is still taken")

        let inspect = Self.oc(["inspect", images])
        #expect(inspect.out.contains("Signer: ed25519 sha256:"), "\(inspect)")

        // One byte of the dumped memory changed: refused before any process exists.
        let pages = images + "/pages-1.img"
        let original = try #require(FileManager.default.contents(atPath: pages))
        try #require(original.count > 100)
        var flipped = original
        flipped[100] ^= 0xff
        try flipped.write(to: URL(fileURLWithPath: pages))
        let refused = Self.oc(["restore", "-D", images, "--verify", pub, "-d"])
        #expect(!refused.ok && refused.err.contains("image directory \(images) refused: pages-1.img differs from its signed manifest")
                && refused.err.contains("offset 0"), "\(refused)")
        #expect(refused.err.split(separator: "\n").count == 1, "one line: \(refused.err)")
        #expect(access("/proc/\(child)", F_OK) != 0, "a refused restore made pid \(child)")

        // Put back: another key is still refused; the signer's key restores it.
        try original.write(to: URL(fileURLWithPath: pages))
        let other = Self.oc(["restore", "-D", images, "--verify", otherPub, "-d"])
        #expect(!other.ok && other.err.contains("signed by another key"), "\(other)")
        let restore = Self.oc(["restore", "-D", images, "--verify", pub, "-d", "-o", "restore.txt"])
        try #require(restore.ok, "restore: \(restore)")
        defer { kill(child, SIGKILL) }
        #expect(readFile("/proc/\(child)/cmdline")?.hasPrefix("sleep") == true)
    }
}
