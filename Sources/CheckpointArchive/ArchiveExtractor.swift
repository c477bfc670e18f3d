import CArchive
import LinuxKernel
import Foundation

/// Extracts the wanted members of an archive into a temporary sibling of the target,
/// summing each file block by block as it is written, and renames it onto the target only
/// when every member matched the manifest and no link leads outside.
final class ArchiveExtractor {
    private let reader: ArchiveReader
    private let wanted: (String) -> Bool
    private let requireManifest: Bool
    private let progress: ProgressReporter?
    private let signatureCheck: SignatureCheck
    private var manifest: ArchiveManifest?
    private var manifestBytes: Data?
    private var signatureBytes: Data?
    private var seen: [String: ArchiveManifest.Entry] = [:]
    private var order: [String] = []
    private var files: Set<String> = []
    private var extracted: Set<String> = []
    private var symlinks: [String] = []
    private static let flags = ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME
        | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT

    init(_ reader: ArchiveReader, wanted: @escaping (String) -> Bool, requireManifest: Bool, progress: ProgressReporter?,
         signature: SignatureCheck = .none) {
        self.reader = reader
        self.signatureCheck = signature
        self.wanted = wanted
        self.requireManifest = requireManifest
        self.progress = progress
    }

    /// `beforeCommit` runs once everything is extracted and verified, before the rename.
    func extract(into directory: String, beforeCommit: () throws -> Void = {}) throws {
        let target = try ExtractionTarget.prepare(directory)
        do {
            progress?.start(total: reader.totalBytes)
            let disk = archive_write_disk_new()!
            defer { archive_write_free(disk) }
            archive_write_disk_set_options(disk, Self.flags)
            while let entry = try reader.next() {
                try place(entry, disk: disk, root: target.temporary)
            }
            try checkDisk(archive_write_close(disk), disk, "finishing")
            try checkSymlinksStayInside(target.temporary)
            try verifySignature()
            try verifyAgainstManifest()
            try beforeCommit()
            try target.commit()
            progress?.finish()
        } catch let MemberPath.Refusal.reason(reason) {
            target.discard()
            throw ArchiveError.damaged(reader.name, reason)
        } catch {
            target.discard()
            throw error
        }
    }

    private func place(_ entry: OpaquePointer, disk: OpaquePointer, root: String) throws {
        guard let name = try MemberPath.normalize(memberPathname(entry)) else {
            return try reader.skipData()
        }
        // The signature, and only it, may follow the manifest: a member after it is unchecked.
        if name == ManifestSignature.memberName {
            guard manifest != nil else { throw refusal("its signature member \(name) comes before the manifest") }
            guard signatureBytes == nil else { throw refusal("its signature member appears twice") }
            return signatureBytes = try readSmallMember(entry, what: "signature")
        }
        guard manifest == nil else {
            throw refusal("member \(name) follows the \(signatureBytes == nil ? "manifest" : "signature")")
        }
        if name == ArchiveManifest.memberName {
            let data = try readSmallMember(entry, what: "manifest")
            manifestBytes = data
            return manifest = try ArchiveManifest.decode(data, archive: reader.name)
        }
        guard seen[name] == nil else { throw refusal("member \(name) appears twice") }
        var record = try describe(entry, name: name)
        seen[name] = record
        order.append(name)
        guard wanted(name) else { return try reader.skipData() }

        archive_entry_copy_pathname(entry, root + "/" + name)
        if record.kind == .hardlink, let target = record.target {
            guard extracted.contains(target) else { throw refusal("hardlink \(name) needs \(target), which was not extracted") }
            archive_entry_copy_hardlink(entry, root + "/" + target)
        }
        try checkDisk(archive_write_header(disk, entry), disk, "member \(name)")
        if record.kind == .file {
            record.sha256 = try copyData(of: name, size: record.size ?? 0, to: disk)
            seen[name] = record
        }
        try checkDisk(archive_write_finish_entry(disk), disk, "member \(name)")
        extracted.insert(name)
        if record.kind == .symlink { symlinks.append(name) }
    }

    /// What the header says the member is, refusing types and links that have no place here.
    private func describe(_ entry: OpaquePointer, name: String) throws -> ArchiveManifest.Entry {
        var record = ArchiveManifest.Entry(name: name, kind: .file, mode: UInt32(archive_entry_perm(entry)),
                                           uid: UInt32(truncatingIfNeeded: archive_entry_uid(entry)),
                                           gid: UInt32(truncatingIfNeeded: archive_entry_gid(entry)))
        if let hardlink = archive_entry_hardlink(entry) {
            guard archive_entry_size(entry) == 0 else { throw refusal("hardlink \(name) carries data") }
            record.kind = .hardlink
            record.target = try MemberPath.checkHardlink(name, target: String(cString: hardlink), files: files)
            return record
        }
        switch archive_entry_filetype(entry) {
        case UInt32(Glibc.S_IFREG):
            record.size = archive_entry_size(entry)
            files.insert(name)
        case UInt32(Glibc.S_IFDIR):
            record.kind = .directory
        case UInt32(Glibc.S_IFLNK):
            guard let link = archive_entry_symlink(entry) else { throw refusal("symlink \(name) has no target") }
            let target = String(cString: link)
            try MemberPath.checkSymlink(name, target: target)
            record.kind = .symlink
            record.target = target
        default:
            throw refusal("member \(name) is a device, FIFO or socket")
        }
        return record
    }

    private func copyData(of name: String, size: Int64, to disk: OpaquePointer) throws -> String {
        let hasher = SHA256Hasher()
        var position: Int64 = 0
        while let (block, offset) = try reader.nextBlock() {
            guard offset >= position else { throw refusal("member \(name) has overlapping data blocks") }
            hasher.update(zeros: offset - position)
            if let bytes = block.baseAddress, block.count > 0 {
                hasher.update(bytes, count: block.count)
                let written = archive_write_data_block(disk, bytes, block.count, offset)
                if written < 0 { try checkDisk(Int32(truncatingIfNeeded: written), disk, "member \(name)") }
            }
            position = offset + Int64(block.count)
            progress?.update(done: reader.bytesRead)
        }
        hasher.update(zeros: size - position)
        return hasher.finish()
    }

    private func readSmallMember(_ entry: OpaquePointer, what: String) throws -> Data {
        try Self.readSmallMember(entry, reader: reader, what: what)
    }

    static func readSmallMember(_ entry: OpaquePointer, reader: ArchiveReader, what: String) throws -> Data {
        let size = archive_entry_size(entry)
        guard archive_entry_filetype(entry) == UInt32(Glibc.S_IFREG), archive_entry_hardlink(entry) == nil,
              size >= 0, size < 256 << 20 else {
            throw ArchiveError.damaged(reader.name, "its \(what) member is not a file of sane size")
        }
        var data = Data(count: Int(size))
        var got = 0
        while got < Int(size) {
            let n = try data.withUnsafeMutableBytes { try reader.read(into: $0.baseAddress! + got, count: $0.count - got) }
            guard n > 0 else { break }
            got += n
        }
        guard got == Int(size) else { throw ArchiveError.damaged(reader.name, "its \(what) is truncated") }
        return data
    }

    /// What the archive says about its signer (known once extract has read it all).
    var signer: Signer {
        guard let signatureBytes, let sig = try? ManifestSignature.decode(signatureBytes, subject: reader.name) else { return .unsigned }
        return .signed(fingerprint: sig.fingerprint)
    }

    private func verifySignature() throws {
        guard case let .require(key) = signatureCheck else { return }
        guard let manifestBytes else { throw refusal("it has no manifest, so nothing is signed") }
        try ManifestSignature.verify(manifest: manifestBytes, signature: signatureBytes, key: key, subject: reader.name)
    }

    private func verifyAgainstManifest() throws {
        guard let manifest else {
            guard !requireManifest else { throw refusal("it has no manifest (truncated, or not made by ocicheckpoint)") }
            return
        }
        var expected = Dictionary(manifest.members.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for name in order {
            guard let want = expected.removeValue(forKey: name) else { throw refusal("member \(name) is not in the manifest") }
            var got = seen[name]!
            if got.kind == .file, !extracted.contains(name) { got.sha256 = want.sha256 }
            if got.kind == .file, got.sha256 != want.sha256 {
                throw refusal("member \(name) does not match its SHA-256 in the manifest")
            }
            guard got == want else { throw refusal("member \(name) differs from its manifest entry (\(difference(got, want)))") }
        }
        if let missing = expected.keys.sorted().first { throw refusal("member \(missing) listed in the manifest is missing") }
    }

    private func difference(_ got: ArchiveManifest.Entry, _ want: ArchiveManifest.Entry) -> String {
        if got.kind != want.kind { return "\(got.kind.rawValue), manifest says \(want.kind.rawValue)" }
        if got.size != want.size { return "size \(got.size ?? 0), manifest says \(want.size ?? 0)" }
        if got.target != want.target { return "link target \(got.target ?? ""), manifest says \(want.target ?? "")" }
        if got.mode != want.mode { return "mode \(String(got.mode, radix: 8)), manifest says \(String(want.mode, radix: 8))" }
        return "owner \(got.uid):\(got.gid), manifest says \(want.uid):\(want.gid)"
    }

    /// A link through another link can pass the name check and still lead out ("d" -> ".",
    /// "l" -> "d/../x"): the kernel resolves each extracted symlink beneath the root.
    private func checkSymlinksStayInside(_ root: String) throws {
        guard !symlinks.isEmpty else { return }
        let rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw CheckpointError.errno("unpack: open \(root)") }
        defer { close(rootFD) }
        for name in symlinks {
            let fd = carchive_open_beneath(rootFD, name)
            if fd >= 0 { close(fd); continue }
            if errno == EXDEV {
                throw refusal("symlink \(name) -> \(seen[name]?.target ?? "") points outside the archive")
            }
        }
    }

    private func checkDisk(_ status: Int32, _ disk: OpaquePointer, _ what: String) throws {
        guard status < ARCHIVE_OK else { return }
        let reason = archive_error_string(disk).map { String(cString: $0) } ?? "error \(status)"
        throw CheckpointError(.image, "unpack of \(reader.name): writing \(what): \(reason)")
    }

    private func refusal(_ reason: String) -> CheckpointError { ArchiveError.damaged(reader.name, reason) }
}
