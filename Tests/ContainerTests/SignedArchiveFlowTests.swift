// Signed checkpoints of a runc container: `checkpoint --export --sign KEY` and
// `--export-image --sign KEY`, `restore --import/--import-image --verify PUBKEY`; another
// key, or no signature, is refused with nothing left behind.

import LinuxKernel
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct SignedArchiveFlowTests {
    private func oc(_ args: [String], timeout: Double = 120) -> Output {
        Cmd.run([Env.binary] + args, timeout: timeout)
    }

    /// An Ed25519 key pair as the README makes it; returns (private, public).
    private func keyPair(_ scratch: Scratch, _ name: String) throws -> (String, String) {
        let key = scratch.sub(name + ".pem"), pub = scratch.sub(name + ".pub")
        try #require(Cmd.run(["/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", key]).ok)
        try #require(Cmd.run(["/usr/bin/openssl", "pkey", "-in", key, "-pubout", "-out", pub]).ok)
        return (key, pub)
    }

    @Test func signedExportRestoresWithItsKeyAndIsRefusedWithAnother() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let (key, pub) = try keyPair(scratch, "signer")
        let (_, otherPub) = try keyPair(scratch, "other")
        let id = scratch.newID()
        let bundle = try Bundle.make(at: scratch.sub("bundle-\(id)"), args: countingScript())
        let run = Cmd.sh("\(Env.runc) run -d --bundle \(bundle.path) \(id) </dev/null >/dev/null 2>&1", timeout: 30)
        try #require(run.ok, "runc run: \(run)")
        try #require(waitFor(10) { bundle.count.count >= 5 }, "the container does not count")

        let archive = scratch.sub("signed.tar.zst"), layout = scratch.sub("layout")
        let cp = oc(["checkpoint", "--export", archive, "--export-image", layout + ":signed", "--sign", key, id])
        try #require(cp.ok, "checkpoint: \(cp)")
        let last = bundle.lastCount
        #expect(Cmd.run([Env.runc, "delete", "-f", id]).ok)
        try FileManager.default.removeItem(atPath: bundle.path)

        // inspect names the signer by the SHA-256 of the raw public key.
        let fingerprint = Cmd.sh("/usr/bin/openssl pkey -pubin -in \(pub) -outform DER | tail -c 32 | sha256sum").out.prefix(64)
        let inspect = oc(["inspect", archive])
        #expect(inspect.ok && inspect.out.contains("Signer: ed25519 sha256:\(fingerprint)"), "\(inspect)")
        let json = oc(["inspect", archive, "--format", "json"])
        let reports = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]]
        #expect(reports?.first?["signer"] as? String == "ed25519 sha256:\(fingerprint)", "\(json)")

        // Another key, and an unsigned archive: refused, one line, nothing left.
        let unsigned = scratch.sub("unsigned.tar.zst")
        let strip = Cmd.sh("""
            /usr/bin/zstd -dc \(archive) | /usr/bin/python3 -c "
            import sys, tarfile
            with tarfile.open(fileobj=sys.stdin.buffer, mode='r|') as a, tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as b:
                for m in a:
                    if m.name != 'ocicheckpoint.manifest.sig':
                        b.addfile(m, a.extractfile(m) if m.isfile() else None)
            " \(unsigned)
            """)
        try #require(strip.ok, "\(strip)")
        let plain = oc(["inspect", unsigned])
        #expect(plain.ok && plain.out.contains("Signer: not signed"), "\(plain)")
        let cases: [([String], String, String)] = [
            (["--import", archive, "--verify", otherPub], archive, "signed by another key"),
            (["--import", unsigned, "--verify", pub], unsigned, "it is not signed"),
            (["--import-image", layout + ":signed", "--verify", otherPub], layout, "signed by another key"),
        ]
        for (args, subject, reason) in cases {
            let before = scratch.listing()
            let newID = scratch.newID(), path = scratch.sub("refused-\(newID)")
            let r = oc(["restore"] + args + ["--name", newID, "--bundle", path])
            let lines = r.err.split(separator: "\n")
            #expect(!r.ok && lines.count == 1 && r.err.contains(subject) && r.err.contains(reason), "\(args): \(r)")
            #expect(!FileManager.default.fileExists(atPath: path), "\(args): the refused import left \(path)")
            #expect(Runc(id: newID).status == nil, "\(args): runc knows \(newID)")
            #expect(scratch.listing() == before, "\(args): left \(Set(scratch.listing()).subtracting(before))")
        }

        // Its own key: restored, counting on; from the archive and from the image.
        for (n, source) in [["--import", archive], ["--import-image", layout + ":signed"]].enumerated() {
            let newID = scratch.newID(), path = scratch.sub("restored-\(n)")
            let rs = oc(["restore"] + source + ["--verify", pub, "--name", newID, "--bundle", path])
            try #require(rs.ok, "restore \(source): \(rs)\n\(tail(path + "/restore.log"))")
            #expect(rs.err.contains("signature verified"), "\(rs)")
            let b = Bundle(path: path)
            #expect(waitFor(10) { b.lastCount >= last + 4 }, "\(newID) does not count on from \(last): \(b.count.suffix(5))")
            _ = Runc(id: newID).killAndDelete()
        }
        // Without --verify a signed archive restores as before and says it was not verified.
        let newID = scratch.newID(), path = scratch.sub("unverified")
        let rs = oc(["restore", "--import", archive, "--name", newID, "--bundle", path])
        try #require(rs.ok, "restore: \(rs)")
        #expect(rs.err.contains("signed by sha256:\(fingerprint), not verified"), "\(rs)")
        _ = Runc(id: newID).killAndDelete()
    }

    @Test func signedImageDirectoryOfRuncCheckpointIsVerifiedBeforeRuncRestores() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let (key, pub) = try keyPair(scratch, "signer")
        let id = scratch.newID()
        let bundle = try Bundle.make(at: scratch.sub("bundle-\(id)"), args: countingScript())
        let run = Cmd.sh("\(Env.runc) run -d --bundle \(bundle.path) \(id) </dev/null >/dev/null 2>&1", timeout: 30)
        try #require(run.ok, "runc run: \(run)")
        scratch.onTearDown { _ = Runc(id: id).killAndDelete() }
        try #require(waitFor(10) { bundle.count.count >= 5 }, "the container does not count")

        let images = scratch.sub("images"), work = scratch.sub("work")
        let cp = oc(["checkpoint", "--image-path", images, "--work-path", work, "--sign", key, id])
        try #require(cp.ok, "checkpoint: \(cp)")
        #expect(FileManager.default.fileExists(atPath: images + "/ocicheckpoint.manifest.sig"))
        let last = bundle.lastCount
        #expect(Cmd.run([Env.runc, "delete", "-f", id]).ok)

        let pages = try #require(try FileManager.default.contentsOfDirectory(atPath: images).first { $0.hasPrefix("pages-") })
        let original = try #require(FileManager.default.contents(atPath: images + "/" + pages))
        var flipped = original
        flipped[flipped.count / 2] ^= 0x01
        try flipped.write(to: URL(fileURLWithPath: images + "/" + pages))
        let refused = oc(["restore", id, "--bundle", bundle.path, "--image-path", images, "--work-path", scratch.sub("rwork"), "--verify", pub])
        #expect(!refused.ok && refused.err.contains("\(pages) differs from its signed manifest"), "\(refused)")
        #expect(Runc(id: id).status == nil, "runc restored a refused image directory")

        try original.write(to: URL(fileURLWithPath: images + "/" + pages))
        let restored = oc(["restore", id, "--bundle", bundle.path, "--image-path", images, "--work-path", scratch.sub("rwork2"), "--verify", pub])
        try #require(restored.ok, "restore: \(restored)\n\(tail(scratch.sub("rwork2") + "/restore.log"))")
        #expect(waitFor(10) { bundle.lastCount >= last + 3 }, "no counting after restore")
    }
}
