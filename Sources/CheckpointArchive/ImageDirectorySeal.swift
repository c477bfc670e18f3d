import LinuxKernel
import Foundation

/// A signed manifest for a plain image directory (`dump -D DIR`, CRIU's layout): two extra
/// files CRIU ignores, `ocicheckpoint.manifest.json` (size, SHA-256 and per-block SHA-256 of
/// every image) and `ocicheckpoint.manifest.sig`. Logs (`*.log`) are left out: they are
/// written around the dump and restore.
public enum ImageDirectorySeal {
    public static let manifestName = ArchiveManifest.memberName
    public static let signatureName = ManifestSignature.memberName
    static let formatName = "ocicheckpoint-images"
    static let blockSize = 1 << 20

    struct Manifest: Codable {
        var format = ImageDirectorySeal.formatName
        var version = 1
        var blockSize = ImageDirectorySeal.blockSize
        var files: [File]

        struct File: Codable {
            var name: String
            var size: Int64
            var sha256: String
            /// SHA-256 of each blockSize block, so a change is located, not only detected.
            var blocks: [String]
        }
    }

    /// Hashes every image in `directory` and writes the manifest and its signature.
    /// `excluding`: names of other files that change around a dump (a log given by -o).
    public static func seal(_ directory: String, with key: SigningKey, excluding: Set<String> = []) throws {
        var files: [Manifest.File] = []
        for name in try covered(in: directory, excluding: excluding) {
            let (size, sha256, blocks) = try hash(directory + "/" + name, blockSize: blockSize)
            files.append(.init(name: name, size: size, sha256: sha256, blocks: blocks))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let manifest = try encoder.encode(Manifest(files: files))
        try write(manifest, to: directory + "/" + manifestName)
        try write(try ManifestSignature.sign(manifest, with: key), to: directory + "/" + signatureName)
    }

    /// Refuses, naming the file (and the offset of the first block that differs), an image
    /// directory not signed by `key` or whose images changed after signing. A file the
    /// manifest does not list is refused when `isImage` says the engine could read it; any
    /// other (a log of a later run) is left alone.
    public static func verify(_ directory: String, key: VerifyingKey, excluding: Set<String> = [],
                              isImage: (String) -> Bool) throws {
        let subject = "image directory \(directory)"
        guard let manifestBytes = FileManager.default.contents(atPath: directory + "/" + manifestName) else {
            throw ArchiveError.damaged(subject, "it is not signed (no \(manifestName); sign with dump --sign KEY)")
        }
        let signature = FileManager.default.contents(atPath: directory + "/" + signatureName)
        try ManifestSignature.verify(manifest: manifestBytes, signature: signature, key: key, subject: subject)
        guard let manifest = try? JSONDecoder().decode(Manifest.self, from: manifestBytes),
              manifest.format == formatName, manifest.version == 1, manifest.blockSize > 0 else {
            throw ArchiveError.damaged(subject, "its \(manifestName) is not an image directory manifest")
        }
        let listed = Set(manifest.files.map(\.name))
        if let extra = try covered(in: directory, excluding: excluding).first(where: { !listed.contains($0) && isImage($0) }) {
            throw ArchiveError.damaged(subject, "\(extra) is not in its signed manifest")
        }
        for file in manifest.files {
            guard !file.name.contains("/"), file.name != ".", file.name != ".." else {
                throw ArchiveError.damaged(subject, "its manifest names \(file.name), not a file of the directory")
            }
            let path = directory + "/" + file.name
            guard FileManager.default.fileExists(atPath: path) else { throw ArchiveError.damaged(subject, "\(file.name) is missing") }
            let (size, sha256, blocks) = try hash(path, blockSize: manifest.blockSize)
            guard sha256 != file.sha256 || size != file.size else { continue }
            let first = zip(blocks, file.blocks).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset
                ?? min(blocks.count, file.blocks.count)
            let offset = Int64(first) * Int64(manifest.blockSize)
            let where_ = size != file.size ? "size \(size), signed \(file.size); first difference in the block at offset \(offset)"
                                           : "changed in the block at offset \(offset) (0x\(String(offset, radix: 16)))"
            throw ArchiveError.damaged(subject, "\(file.name) differs from its signed manifest: \(where_)")
        }
    }

    /// What the directory says about its signer; nothing is verified.
    public static func signer(of directory: String) -> Signer {
        guard let data = FileManager.default.contents(atPath: directory + "/" + signatureName),
              let sig = try? ManifestSignature.decode(data, subject: directory) else { return .unsigned }
        return .signed(fingerprint: sig.fingerprint)
    }

    /// Every entry but logs and the seal itself, sorted; a subdirectory or link is refused
    /// because CRIU's layout has none and the manifest could not vouch for it.
    static func covered(in directory: String, excluding: Set<String>) throws -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw CheckpointError(.notFound, "image directory \(directory): cannot list it: \(error.localizedDescription)")
        }
        var out: [String] = []
        for name in names.sorted() where name != manifestName && name != signatureName && !name.hasSuffix(".log")
            && !excluding.contains(name) {
            var status = stat()
            guard lstat(directory + "/" + name, &status) == 0 else { throw CheckpointError.errno("image directory \(directory): \(name)") }
            guard status.st_mode & S_IFMT == S_IFREG else {
                throw ArchiveError.damaged("image directory \(directory)", "\(name) is not a regular file")
            }
            out.append(name)
        }
        return out
    }

    private static func hash(_ path: String, blockSize: Int) throws -> (Int64, String, [String]) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.errno("open \(path)") }
        defer { close(fd) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 4096)
        defer { buffer.deallocate() }
        let whole = SHA256Hasher()
        var blocks: [String] = []
        var size: Int64 = 0
        while true {
            var filled = 0
            while filled < blockSize {
                let n = try Syscall.retrying("read \(path)") { read(fd, buffer + filled, blockSize - filled) }
                if n == 0 { break }
                filled += n
            }
            guard filled > 0 else { break }
            whole.update(buffer, count: filled)
            let block = SHA256Hasher()
            block.update(buffer, count: filled)
            blocks.append(block.finish())
            size += Int64(filled)
            if filled < blockSize { break }
        }
        return (size, whole.finish(), blocks)
    }

    private static func write(_ data: Data, to path: String) throws {
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw CheckpointError(.kernel, "write \(path): \(error.localizedDescription)")
        }
    }
}
