import CArchive
import LinuxKernel
import Foundation

/// Checkpoint archives: a pax tar of a checkpoint directory (zstd, gzip or plain), podman's
/// --export format, with a last member `ocicheckpoint.manifest.json` that carries the SHA-256,
/// size, type, mode and owner of every member so that unpacking refuses any damage.
public enum CheckpointArchive {
    public static let manifestName = ArchiveManifest.memberName

    /// Packs every object under `directory` into `file` (mode 0600), streaming. The file
    /// appears only when complete: it is written beside itself and renamed at the end.
    /// With `signingKey`, the manifest's signature member follows the manifest.
    public static func pack(directory: String, to file: String, compression: ArchiveCompression = .zstd,
                            progress: ProgressReporter? = nil, signingKey: SigningKey? = nil) throws {
        var status = stat()
        guard stat(directory, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw CheckpointError(.notFound, "pack: \(directory) is not a directory")
        }
        let url = URL(fileURLWithPath: file)
        let parent = url.deletingLastPathComponent().path
        if let realDir = realpath(directory, nil), let realParent = realpath(parent, nil) {
            defer { free(realDir); free(realParent) }
            let dir = String(cString: realDir), into = String(cString: realParent)
            if into == dir || into.hasPrefix(dir + "/") {
                throw CheckpointError(.invalidArgument, "pack: \(file) would be inside the directory \(directory) it packs")
            }
        }
        var template = Array("\(parent)/.\(url.lastPathComponent).pack-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw CheckpointError.errno("pack: create \(file)") }
        let temporary = String(cString: template)
        do {
            defer { close(fd) }
            let writer = try ArchiveWriter(.tar, compression: compression, what: "pack \(file)") { bytes in
                try writeAll(fd, bytes, file: file)
            }
            try ArchivePacker(directory: directory, writer: writer, progress: progress, signingKey: signingKey).pack()
            try writer.close()
            guard fchmod(fd, 0o600) == 0, fsync(fd) == 0 else { throw CheckpointError.errno("pack: sync \(file)") }
            guard rename(temporary, file) == 0 else { throw CheckpointError.errno("pack: rename to \(file)") }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// Verifies the manifest while streaming and extracts into `directory` (which must not
    /// exist or be empty). A refused archive leaves nothing behind. With `.require(key)` the
    /// signature is checked first in a pass that writes nothing, and again over the manifest
    /// the extraction reads. Returns what the archive says about its signer.
    @discardableResult
    public static func unpack(_ file: String, into directory: String, progress: ProgressReporter? = nil,
                              signature: SignatureCheck = .none) throws -> Signer {
        if case let .require(key) = signature {
            let (manifest, sig) = try manifestAndSignature(of: file)
            guard let manifest else { throw ArchiveError.damaged("archive \(file)", "it has no manifest, so nothing is signed") }
            try ManifestSignature.verify(manifest: manifest, signature: sig, key: key, subject: "archive \(file)")
        }
        let reader = try ArchiveReader(file: file)
        let extractor = ArchiveExtractor(reader, wanted: { _ in true }, requireManifest: true, progress: progress, signature: signature)
        try extractor.extract(into: directory)
        return extractor.signer
    }

    /// What the archive says about its signer, from its last members alone; nothing is verified.
    public static func signer(of file: String) throws -> Signer {
        guard let sig = try manifestAndSignature(of: file).signature else { return .unsigned }
        return .signed(fingerprint: try ManifestSignature.decode(sig, subject: "archive \(file)").fingerprint)
    }

    /// Checks that the archive's manifest is signed by `key`, writing nothing.
    public static func verifySignature(of file: String, key: VerifyingKey) throws {
        let (manifest, sig) = try manifestAndSignature(of: file)
        guard let manifest else { throw ArchiveError.damaged("archive \(file)", "it has no manifest, so nothing is signed") }
        try ManifestSignature.verify(manifest: manifest, signature: sig, key: key, subject: "archive \(file)")
    }

    /// The manifest's and the signature's bytes, skipping every other member's data; the
    /// extractor's order rule holds: the signature, and nothing else, right after the manifest.
    static func manifestAndSignature(of file: String) throws -> (manifest: Data?, signature: Data?) {
        try manifestAndSignature(in: try ArchiveReader(file: file))
    }

    static func manifestAndSignature(in reader: ArchiveReader) throws -> (manifest: Data?, signature: Data?) {
        var manifest: Data?, signature: Data?
        while let entry = try reader.next() {
            let raw = memberPathname(entry)
            let name: String?
            do { name = try MemberPath.normalize(raw) } catch let MemberPath.Refusal.reason(reason) {
                throw ArchiveError.damaged(reader.name, reason)
            }
            guard let name else { try reader.skipData(); continue }
            if name == ManifestSignature.memberName {
                guard manifest != nil else { throw ArchiveError.damaged(reader.name, "its signature member \(name) comes before the manifest") }
                guard signature == nil else { throw ArchiveError.damaged(reader.name, "its signature member appears twice") }
                signature = try ArchiveExtractor.readSmallMember(entry, reader: reader, what: "signature")
                continue
            }
            guard manifest == nil else {
                throw ArchiveError.damaged(reader.name, "member \(name) follows the \(signature == nil ? "manifest" : "signature")")
            }
            if name == ArchiveManifest.memberName {
                manifest = try ArchiveExtractor.readSmallMember(entry, reader: reader, what: "manifest")
            } else {
                try reader.skipData()
            }
        }
        return (manifest, signature)
    }

    /// Extracts only the members whose name `wanted` accepts, verifying their sums.
    public static func extract(_ file: String, into directory: String, where wanted: @escaping (String) -> Bool) throws {
        let reader = try ArchiveReader(file: file)
        try ArchiveExtractor(reader, wanted: wanted, requireManifest: true, progress: nil).extract(into: directory)
    }

    /// The members (the manifest left out) from their headers alone; nothing is verified.
    public static func list(_ file: String) throws -> [ArchiveMember] {
        let reader = try ArchiveReader(file: file)
        var members: [ArchiveMember] = []
        while let entry = try reader.next() {
            let raw = memberPathname(entry)
            let name: String?
            do { name = try MemberPath.normalize(raw) } catch let MemberPath.Refusal.reason(reason) {
                throw ArchiveError.damaged("archive \(file)", reason)
            }
            try reader.skipData()
            guard let name, name != ArchiveManifest.memberName else { continue }
            let kind: ArchiveMember.Kind
            switch archive_entry_filetype(entry) {
            case _ where archive_entry_hardlink(entry) != nil: kind = .hardlink
            case UInt32(Glibc.S_IFDIR): kind = .directory
            case UInt32(Glibc.S_IFLNK): kind = .symlink
            default: kind = .file
            }
            members.append(ArchiveMember(name: name, kind: kind, size: kind == .file ? archive_entry_size(entry) : 0))
        }
        return members
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, file: String) throws {
        var done = 0
        while done < bytes.count {
            let n = try Syscall.retrying("write \(file)") { Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done) }
            guard n > 0 else { throw CheckpointError.errno("write \(file)", .EIO) }
            done += n
        }
    }
}
