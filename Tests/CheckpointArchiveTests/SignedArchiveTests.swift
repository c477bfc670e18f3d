import CheckpointArchive
import Foundation
import Images
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Keys made with the openssl CLI, as the README tells users to make them.
struct OpenSSLKeys {
    let privateKey: String
    let publicKey: String

    init(_ scratch: Scratch, _ name: String) throws {
        privateKey = scratch.sub("\(name).pem")
        publicKey = scratch.sub("\(name).pub")
        try require(Cmd.run(["/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", privateKey]), "openssl genpkey")
        try require(Cmd.run(["/usr/bin/openssl", "pkey", "-in", privateKey, "-pubout", "-out", publicKey]), "openssl pkey -pubout")
    }

    /// sha256: and the SHA-256 of the raw key (the last 32 bytes of the DER SPKI), by openssl.
    func fingerprint() throws -> String {
        let out = Cmd.sh("/usr/bin/openssl pkey -pubin -in \(publicKey) -outform DER | tail -c 32 | sha256sum")
        try require(out, "fingerprint")
        return "sha256:" + String(out.out.prefix(64))
    }
}

/// Rewrites a tar with python: the manifest's bytes changed, or the signature moved before it.
private func rewrite(_ archive: String, to out: String, _ mode: String) throws {
    let script = """
    import io, sys, tarfile
    src, dst, mode = sys.argv[1:4]
    with tarfile.open(src) as good, tarfile.open(dst, 'w', format=tarfile.PAX_FORMAT) as out:
        members = [(m, good.extractfile(m).read() if m.isfile() else None) for m in good.getmembers()]
        if mode == 'sigfirst':
            sig = [x for x in members if x[0].name == 'ocicheckpoint.manifest.sig']
            rest = [x for x in members if x[0].name != 'ocicheckpoint.manifest.sig']
            at = [x[0].name for x in rest].index('ocicheckpoint.manifest.json')
            members = rest[:at] + sig + rest[at:]
        for m, data in members:
            if mode == 'manifest' and m.name == 'ocicheckpoint.manifest.json':
                data = data + b'\\n'
                m.size = len(data)
            out.addfile(m, io.BytesIO(data) if data is not None else None)
    """
    try require(Cmd.run(["/usr/bin/python3", "-c", script, archive, out, mode]), "rewrite \(archive)")
}

@Suite("Signed archives: Ed25519 over the manifest, checked by --verify")
struct SignedArchiveTests {
    private func source(_ scratch: Scratch) throws -> String {
        let source = scratch.sub("source")
        try Fixture.make(at: source, sparse: false)
        return source
    }

    private func expectRefused(_ archive: String, _ scratch: Scratch, key: String, saying reason: String) {
        let before = scratch.listing()
        let error = #expect(throws: (any Error).self) {
            try CheckpointArchive.unpack(archive, into: scratch.sub("target"), signature: .require(VerifyingKey(file: key)))
        }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains(reason), "message: \(message)")
        #expect(message.contains(archive) && !message.contains("\n"), "one line naming the archive: \(message)")
        #expect(scratch.listing() == before, "nothing left beside the target")
    }

    @Test("signed with an openssl key, verified with its public key; inspect's signer is openssl's fingerprint")
    func roundTrip() throws {
        let scratch = try Scratch()
        let keys = try OpenSSLKeys(scratch, "signer")
        let archive = scratch.sub("signed.tar.zst")
        try CheckpointArchive.pack(directory: try source(scratch), to: archive, signingKey: SigningKey(file: keys.privateKey))
        let signer = try CheckpointArchive.unpack(archive, into: scratch.sub("out"), signature: .require(VerifyingKey(file: keys.publicKey)))
        #expect(signer == .signed(fingerprint: try keys.fingerprint()))
        try Fixture.expectSame(scratch.sub("source"), scratch.sub("out"))
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("out/ocicheckpoint.manifest.sig")))
        #expect(try CheckpointArchive.signer(of: archive) == signer)
        #expect(try CheckpointArchive.signer(of: archive).description == "ed25519 " + keys.fingerprint())
        // Without --verify a signed archive unpacks as before and says who signed it.
        #expect(try CheckpointArchive.unpack(archive, into: scratch.sub("unverified")) == signer)
        // A private key file verifies too (its public half is used).
        try CheckpointArchive.verifySignature(of: archive, key: VerifyingKey(file: keys.privateKey))
    }

    @Test("the signature is a plain Ed25519 signature that openssl pkeyutl verifies")
    func opensslVerifies() throws {
        let scratch = try Scratch()
        let keys = try OpenSSLKeys(scratch, "signer")
        let archive = scratch.sub("signed.tar")
        try CheckpointArchive.pack(directory: try source(scratch), to: archive, compression: .none, signingKey: SigningKey(file: keys.privateKey))
        try require(Cmd.run(["/bin/tar", "-xf", archive, "-C", scratch.path, "ocicheckpoint.manifest.json", "ocicheckpoint.manifest.sig"]), "tar")
        try require(Cmd.sh("cd \(scratch.path) && python3 -c \"import json,base64,sys; sys.stdout.buffer.write(base64.b64decode(json.load(open('ocicheckpoint.manifest.sig'))['signature']))\" > sig.bin"), "sig.bin")
        let out = Cmd.run(["/usr/bin/openssl", "pkeyutl", "-verify", "-pubin", "-inkey", keys.publicKey, "-rawin",
                           "-in", scratch.sub("ocicheckpoint.manifest.json"), "-sigfile", scratch.sub("sig.bin")])
        #expect(out.ok && out.out.contains("Verified Successfully"), "\(out)")
    }

    @Test("signed by another key: refused before anything is unpacked")
    func wrongKey() throws {
        let scratch = try Scratch()
        let keys = try OpenSSLKeys(scratch, "signer"), other = try OpenSSLKeys(scratch, "other")
        let archive = scratch.sub("signed.tar.zst")
        try CheckpointArchive.pack(directory: try source(scratch), to: archive, signingKey: SigningKey(file: keys.privateKey))
        expectRefused(archive, scratch, key: other.publicKey, saying: "signed by another key (\(try keys.fingerprint()), not \(try other.fingerprint()))")
        #expect(throws: (any Error).self) { try CheckpointArchive.verifySignature(of: archive, key: VerifyingKey(file: other.publicKey)) }
    }

    @Test("unsigned with --verify: refused; without it, unpacked as today")
    func unsigned() throws {
        let scratch = try Scratch()
        let keys = try OpenSSLKeys(scratch, "signer")
        let archive = scratch.sub("plain.tar.zst")
        try CheckpointArchive.pack(directory: try source(scratch), to: archive)
        expectRefused(archive, scratch, key: keys.publicKey, saying: "it is not signed")
        #expect(try CheckpointArchive.signer(of: archive) == .unsigned)
        #expect(try CheckpointArchive.unpack(archive, into: scratch.sub("out")) == .unsigned)
    }

    @Test("the manifest changed after signing: refused")
    func manifestChanged() throws {
        let scratch = try Scratch()
        let keys = try OpenSSLKeys(scratch, "signer")
        let archive = scratch.sub("signed.tar"), changed = scratch.sub("changed.tar")
        try CheckpointArchive.pack(directory: try source(scratch), to: archive, compression: .none, signingKey: SigningKey(file: keys.privateKey))
        try rewrite(archive, to: changed, "manifest")
        expectRefused(changed, scratch, key: keys.publicKey, saying: "its manifest was changed after signing")
    }

    @Test("a signature member before the manifest, twice, or a member after it: refused")
    func signatureInTheWrongPlace() throws {
        let scratch = try Scratch()
        let keys = try OpenSSLKeys(scratch, "signer")
        let archive = scratch.sub("signed.tar")
        try CheckpointArchive.pack(directory: try source(scratch), to: archive, compression: .none, signingKey: SigningKey(file: keys.privateKey))
        try rewrite(archive, to: scratch.sub("sigfirst.tar"), "sigfirst")
        expectRefused(scratch.sub("sigfirst.tar"), scratch, key: keys.publicKey, saying: "comes before the manifest")
        try BadArchive.craft(from: archive, to: scratch.sub("after.tar"), .append(["file:evil.sh"]))
        expectRefused(scratch.sub("after.tar"), scratch, key: keys.publicKey, saying: "member evil.sh follows the signature")
        try BadArchive.craft(from: archive, to: scratch.sub("twice.tar"), .append(["file:ocicheckpoint.manifest.sig"]))
        expectRefused(scratch.sub("twice.tar"), scratch, key: keys.publicKey, saying: "its signature member appears twice")
        // Without --verify the layout rule holds all the same.
        #expect(throws: (any Error).self) { try CheckpointArchive.unpack(scratch.sub("after.tar"), into: scratch.sub("t2")) }
    }

    @Test("keys that are not Ed25519, or not keys, are refused with the file named")
    func badKeys() throws {
        let scratch = try Scratch()
        try require(Cmd.run(["/usr/bin/openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                             "-out", scratch.sub("ec.pem")]), "openssl genpkey EC")
        let ec = #expect(throws: (any Error).self) { try SigningKey(file: scratch.sub("ec.pem")) }
        #expect("\(ec.map { "\($0)" } ?? "")".contains("not an Ed25519 key"))
        try write("hello\n", to: scratch.sub("junk.pem"))
        let junk = #expect(throws: (any Error).self) { try VerifyingKey(file: scratch.sub("junk.pem")) }
        #expect("\(junk.map { "\($0)" } ?? "")".contains(scratch.sub("junk.pem")))
    }

    @Test("an OCI image's layer carries the signature; --import-image --verify checks it")
    func signedImage() throws {
        let scratch = try Scratch()
        let keys = try OpenSSLKeys(scratch, "signer"), other = try OpenSSLKeys(scratch, "other")
        let layout = scratch.sub("layout")
        try OCIImageLayout.writeImage(archiveDirectory: try source(scratch), layout: layout, tag: "t", annotations: [:],
                                      signingKey: SigningKey(file: keys.privateKey))
        let read = try OCIImageLayout.readImage(layout: layout, tag: "t", into: scratch.sub("out"),
                                                signature: .require(VerifyingKey(file: keys.publicKey)))
        #expect(read.signer == .signed(fingerprint: try keys.fingerprint()))
        let before = scratch.listing()
        let error = #expect(throws: (any Error).self) {
            try OCIImageLayout.readImage(layout: layout, tag: "t", into: scratch.sub("refused"), signature: .require(VerifyingKey(file: other.publicKey)))
        }
        #expect("\(error.map { "\($0)" } ?? "")".contains("signed by another key"))
        #expect(scratch.listing() == before)
        // The pass that writes nothing, run before an import creates its bundle.
        try OCIImageLayout.verifySignature(layout: layout, tag: "t", key: VerifyingKey(file: keys.publicKey))
        #expect(throws: (any Error).self) { try OCIImageLayout.verifySignature(layout: layout, tag: "t", key: VerifyingKey(file: other.publicKey)) }
        let unsigned = scratch.sub("unsigned")
        try OCIImageLayout.writeImage(archiveDirectory: scratch.sub("source"), layout: unsigned, tag: "t", annotations: [:])
        let refusal = #expect(throws: (any Error).self) {
            try OCIImageLayout.verifySignature(layout: unsigned, tag: "t", key: VerifyingKey(file: keys.publicKey))
        }
        #expect("\(refusal.map { "\($0)" } ?? "")".contains("it is not signed"))
    }
}

@Suite("Signed image directories: a manifest CRIU ignores, checked before restore")
struct SignedImageDirectoryTests {
    private func images(_ scratch: Scratch) throws -> String {
        let dir = try scratch.directory("images")
        try write("inventory\n", to: dir + "/inventory.img")
        try require(Cmd.sh("head -c 3000000 /dev/urandom > \(dir)/pages-1.img"), "pages")
        try write("a log\n", to: dir + "/dump.log")
        return dir
    }

    private func refusal(_ dir: String, _ key: String) -> String {
        let error = #expect(throws: (any Error).self) { try ImageDirectorySeal.verify(dir, key: VerifyingKey(file: key), isImage: ImageName.isImageFile) }
        return error.map { "\($0)" } ?? ""
    }

    @Test("sealed, verified; a flipped byte is refused with the file and the block's offset")
    func flippedByte() throws {
        let scratch = try Scratch()
        let keys = try OpenSSLKeys(scratch, "signer")
        let dir = try images(scratch)
        try ImageDirectorySeal.seal(dir, with: SigningKey(file: keys.privateKey))
        try ImageDirectorySeal.verify(dir, key: VerifyingKey(file: keys.publicKey), isImage: ImageName.isImageFile)
        #expect(ImageDirectorySeal.signer(of: dir) == .signed(fingerprint: try keys.fingerprint()))
        // Logs change around a dump and restore; they are not covered.
        try write("more log\n", to: dir + "/restore.log")
        try ImageDirectorySeal.verify(dir, key: VerifyingKey(file: keys.publicKey), isImage: ImageName.isImageFile)

        try require(Cmd.sh("printf '\\377' | dd of=\(dir)/pages-1.img bs=1 seek=1500000 conv=notrunc status=none"), "flip")
        let message = refusal(dir, keys.publicKey)
        #expect(message.contains("image directory \(dir) refused: pages-1.img differs from its signed manifest"), "\(message)")
        #expect(message.contains("offset 1048576"), "\(message)")
    }

    @Test("unsigned, another key, a changed manifest, an added image: refused")
    func refusals() throws {
        let scratch = try Scratch()
        let keys = try OpenSSLKeys(scratch, "signer"), other = try OpenSSLKeys(scratch, "other")
        let dir = try images(scratch)
        #expect(refusal(dir, keys.publicKey).contains("it is not signed"))
        try ImageDirectorySeal.seal(dir, with: SigningKey(file: keys.privateKey))
        #expect(refusal(dir, other.publicKey).contains("signed by another key"))
        try write("extra\n", to: dir + "/core-9.img")
        #expect(refusal(dir, keys.publicKey).contains("core-9.img is not in its signed manifest"))
        unlink(dir + "/core-9.img")
        let manifest = dir + "/ocicheckpoint.manifest.json"
        let text = try String(contentsOfFile: manifest, encoding: .utf8)
        try write(text + "\n", to: manifest)
        #expect(refusal(dir, keys.publicKey).contains("changed after signing"))
    }
}
