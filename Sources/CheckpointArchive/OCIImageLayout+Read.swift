import CArchive
import LinuxKernel
import Foundation

extension OCIImageLayout {
    /// Extracts the layer of the image tagged `tag` into `directory` (which must not exist or
    /// be empty) and returns the manifest's annotations. Every blob is checked against its
    /// digest and size, the layer's tar against the config's diff_id, while streaming; an
    /// ocicheckpoint manifest member in the layer is verified too.
    public static func readImage(layout: String, tag: String, into directory: String) throws -> [String: String] {
        try readImage(layout: layout, tag: tag, into: directory, signature: .none).annotations
    }

    /// As above; with `.require(key)` the layer's manifest must be signed by the key (a refused
    /// image leaves nothing behind). Returns also what the layer says about its signer.
    public static func readImage(layout: String, tag: String, into directory: String,
                                 signature: SignatureCheck) throws -> (annotations: [String: String], signer: Signer) {
        let index = try decode(OCIIndex.self, try readFile(layout + "/index.json", layout), "\(layout)/index.json")
        guard let descriptor = index.manifests.first(where: { $0.annotations?[OCIMediaType.refName] == tag }) else {
            throw CheckpointError(.notFound, "OCI layout \(layout) has no image tagged \(tag)")
        }
        let manifest = try decode(OCIManifest.self, try readBlob(descriptor, layout), "manifest \(descriptor.digest)")
        let config = try decode(OCIImageConfig.self, try readBlob(manifest.config, layout), "config \(manifest.config.digest)")
        guard manifest.layers.count == 1, config.rootfs.diff_ids.count == 1 else {
            throw CheckpointError(.unsupported, "OCI layout \(layout): image \(tag) has \(manifest.layers.count) layers; a checkpoint image has one")
        }
        let found = try extractLayer(manifest.layers[0], diffID: config.rootfs.diff_ids[0], layout: layout, into: directory,
                                     signature: signature)
        return (manifest.annotations ?? [:], found)
    }

    /// Checks that the layer of the image tagged `tag` is signed by `key`, writing nothing
    /// (the digests are checked by the extraction that follows).
    public static func verifySignature(layout: String, tag: String, key: VerifyingKey) throws {
        let index = try decode(OCIIndex.self, try readFile(layout + "/index.json", layout), "\(layout)/index.json")
        guard let descriptor = index.manifests.first(where: { $0.annotations?[OCIMediaType.refName] == tag }) else {
            throw CheckpointError(.notFound, "OCI layout \(layout) has no image tagged \(tag)")
        }
        let manifest = try decode(OCIManifest.self, try readBlob(descriptor, layout), "manifest \(descriptor.digest)")
        guard let layer = manifest.layers.first, manifest.layers.count == 1 else {
            throw CheckpointError(.unsupported, "OCI layout \(layout): image \(tag) has \(manifest.layers.count) layers; a checkpoint image has one")
        }
        let fd = open(try blobPath(layer.digest, layout), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.errno("OCI layout \(layout): layer \(layer.digest)") }
        defer { close(fd) }
        let name = "OCI layout \(layout) layer \(layer.digest)"
        let stream = try ArchiveReader(.raw, name: name) { buffer, capacity in
            let n = read(fd, buffer, capacity)
            guard n >= 0 else { throw CheckpointError.errno("\(name): read") }
            return n
        }
        guard try stream.next() != nil else { throw ArchiveError.damaged(name, "the layer is empty") }
        let tar = try ArchiveReader(.tar, name: name) { buffer, capacity in try stream.read(into: buffer, count: capacity) }
        let (manifestBytes, signature) = try CheckpointArchive.manifestAndSignature(in: tar)
        guard let manifestBytes else { throw ArchiveError.damaged(name, "it has no manifest, so nothing is signed") }
        try ManifestSignature.verify(manifest: manifestBytes, signature: signature, key: key, subject: name)
    }

    /// Two libarchive readers in a row: a raw one undoes gzip (or zstd, or nothing) while the
    /// blob is hashed, a tar one reads what it yields while the diff_id is hashed.
    private static func extractLayer(_ layer: OCIDescriptor, diffID: String, layout: String, into directory: String,
                                     signature: SignatureCheck) throws -> Signer {
        let path = try blobPath(layer.digest, layout)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.errno("OCI layout \(layout): layer \(layer.digest)") }
        defer { close(fd) }
        let name = "OCI layout \(layout) layer \(layer.digest)"
        let blobHasher = SHA256Hasher(), diffHasher = SHA256Hasher()
        var blobSize: Int64 = 0
        let readFD = { (buffer: UnsafeMutableRawPointer, capacity: Int) throws -> Int in
            let n = read(fd, buffer, capacity)
            guard n >= 0 else { throw CheckpointError.errno("\(name): read") }
            blobHasher.update(buffer, count: n)
            blobSize += Int64(n)
            return n
        }
        let stream = try ArchiveReader(.raw, name: name, source: readFD)
        guard try stream.next() != nil else { throw ArchiveError.damaged(name, "the layer is empty") }
        let tar = try ArchiveReader(.tar, name: name) { buffer, capacity in
            let n = try stream.read(into: buffer, count: capacity)
            diffHasher.update(buffer, count: n)
            return n
        }
        let extractor = ArchiveExtractor(tar, wanted: { _ in true }, requireManifest: false, progress: nil, signature: signature)
        try extractor.extract(into: directory) {
            // The tar reader stops at the end marker: hash what follows it, then the blob's rest.
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 16)
            defer { buffer.deallocate() }
            while case let n = try stream.read(into: buffer, count: 1 << 16), n > 0 { diffHasher.update(buffer, count: n) }
            while try readFD(buffer, 1 << 16) > 0 {}
            guard "sha256:" + blobHasher.finish() == layer.digest, blobSize == layer.size else {
                throw ArchiveError.damaged(name, "the blob does not match its digest and size")
            }
            guard "sha256:" + diffHasher.finish() == diffID else {
                throw ArchiveError.damaged(name, "the uncompressed layer does not match the config's diff_id \(diffID)")
            }
        }
        return extractor.signer
    }

    private static func readBlob(_ descriptor: OCIDescriptor, _ layout: String) throws -> Data {
        let data = try readFile(try blobPath(descriptor.digest, layout), layout)
        guard "sha256:" + SHA256Hasher.digest(data) == descriptor.digest, Int64(data.count) == descriptor.size else {
            throw CheckpointError(.image, "OCI layout \(layout): blob \(descriptor.digest) does not match its digest and size")
        }
        return data
    }

    /// Only "sha256:" and 64 hex digits name a blob: a digest never becomes a path of its own.
    private static func blobPath(_ digest: String, _ layout: String) throws -> String {
        let hex = digest.dropFirst("sha256:".count)
        guard digest.hasPrefix("sha256:"), hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw CheckpointError(.unsupported, "OCI layout \(layout): digest \(digest) is not a sha256 digest")
        }
        return "\(layout)/blobs/sha256/\(hex)"
    }

    private static func readFile(_ path: String, _ layout: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError(.notFound, "OCI layout \(layout): cannot read \(path)")
        }
        return data
    }
}
