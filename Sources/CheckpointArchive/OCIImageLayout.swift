import CArchive
import LinuxKernel
import Foundation

/// A checkpoint as an OCI image layout (oci-layout, index.json, blobs/sha256/): one gzip
/// layer whose content is the checkpoint's members at its root, as `podman container
/// checkpoint --create-image` makes it, and the annotations on the manifest.
public enum OCIImageLayout {
    /// Writes the image into `layout` (created if needed; an image already tagged `tag` there
    /// is replaced in index.json, others are kept).
    public static func writeImage(archiveDirectory: String, layout: String, tag: String,
                                  annotations: [String: String], signingKey: SigningKey? = nil) throws {
        guard !tag.isEmpty else { throw CheckpointError(.invalidArgument, "OCI layout: empty tag") }
        let blobs = layout + "/blobs/sha256"
        do {
            try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError(.invalidArgument, "OCI layout \(layout): cannot create \(blobs): \(error.localizedDescription)")
        }
        let (layer, diffID) = try writeLayer(from: archiveDirectory, blobs: blobs, layout: layout, signingKey: signingKey)
        let now = ISO8601DateFormatter().string(from: Date())
        let config = OCIImageConfig(created: now, architecture: "amd64", os: "linux",
                                    rootfs: .init(diff_ids: [diffID]),
                                    history: [.init(created: now, created_by: "ocicheckpoint checkpoint image")])
        let configBlob = try writeBlob(JSONEncoder.oci.encode(config), mediaType: OCIMediaType.config, blobs: blobs)
        let manifest = OCIManifest(config: configBlob, layers: [layer], annotations: annotations.isEmpty ? nil : annotations)
        var manifestBlob = try writeBlob(JSONEncoder.oci.encode(manifest), mediaType: OCIMediaType.manifest, blobs: blobs)
        manifestBlob.annotations = [OCIMediaType.refName: tag]

        var index = OCIIndex(manifests: [])
        if let data = FileManager.default.contents(atPath: layout + "/index.json") {
            index = try decode(OCIIndex.self, data, "\(layout)/index.json")
            index.manifests.removeAll { $0.annotations?[OCIMediaType.refName] == tag }
        }
        index.manifests.append(manifestBlob)
        try replaceFile(layout + "/oci-layout", with: Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8))
        try replaceFile(layout + "/index.json", with: JSONEncoder.oci.encode(index))
    }

    /// The layer's tar goes through a second libarchive writer (raw format, gzip) so that
    /// both digests come out of one streaming pass: diff_id of the tar, digest of the blob.
    private static func writeLayer(from directory: String, blobs: String, layout: String,
                                   signingKey: SigningKey?) throws -> (OCIDescriptor, String) {
        var template = Array("\(blobs)/.layer-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw CheckpointError.errno("OCI layout \(layout): create a layer") }
        let temporary = String(cString: template)
        do {
            defer { close(fd) }
            let blobHasher = SHA256Hasher(), diffHasher = SHA256Hasher()
            var blobSize: Int64 = 0
            let gzip = try ArchiveWriter(.raw, compression: .gzip, what: "OCI layout \(layout): layer") { bytes in
                blobHasher.update(bytes.baseAddress!, count: bytes.count)
                blobSize += Int64(bytes.count)
                try CheckpointArchive.writeAll(fd, bytes, file: temporary)
            }
            let stream = archive_entry_new()!
            defer { archive_entry_free(stream) }
            archive_entry_set_pathname(stream, "layer.tar")
            archive_entry_set_filetype(stream, UInt32(Glibc.S_IFREG))
            try gzip.writeHeader(stream, name: "layer")
            let tar = try ArchiveWriter(.tar, compression: .none, what: "OCI layout \(layout): layer") { bytes in
                diffHasher.update(bytes.baseAddress!, count: bytes.count)
                try gzip.write(bytes.baseAddress!, count: bytes.count, name: "layer")
            }
            try ArchivePacker(directory: directory, writer: tar, progress: nil, signingKey: signingKey).pack()
            try tar.close()
            try gzip.close()
            guard fchmod(fd, 0o644) == 0, fsync(fd) == 0 else { throw CheckpointError.errno("OCI layout \(layout): sync the layer") }
            let digest = blobHasher.finish()
            guard rename(temporary, "\(blobs)/\(digest)") == 0 else { throw CheckpointError.errno("OCI layout \(layout): store the layer") }
            return (OCIDescriptor(mediaType: OCIMediaType.layerGzip, digest: "sha256:" + digest, size: blobSize),
                    "sha256:" + diffHasher.finish())
        } catch {
            unlink(temporary)
            throw error
        }
    }

    private static func writeBlob(_ data: Data, mediaType: String, blobs: String) throws -> OCIDescriptor {
        let digest = SHA256Hasher.digest(data)
        try replaceFile("\(blobs)/\(digest)", with: data)
        return OCIDescriptor(mediaType: mediaType, digest: "sha256:" + digest, size: Int64(data.count))
    }

    private static func replaceFile(_ path: String, with data: Data) throws {
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CheckpointError(.kernel, "OCI layout: write \(path): \(error.localizedDescription)")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ data: Data, _ what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw CheckpointError(.image, "OCI layout: \(what) is not a valid \(type): \(error)")
        }
    }
}
