import Foundation

/// The parts of the OCI image-spec documents a checkpoint image uses. Decoding is lenient
/// (unknown fields ignored) so images made by podman and skopeo read too.
enum OCIMediaType {
    static let index = "application/vnd.oci.image.index.v1+json"
    static let manifest = "application/vnd.oci.image.manifest.v1+json"
    static let config = "application/vnd.oci.image.config.v1+json"
    static let layerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    static let refName = "org.opencontainers.image.ref.name"
}

struct OCIDescriptor: Codable {
    var mediaType: String
    var digest: String
    var size: Int64
    var annotations: [String: String]?
}

struct OCIIndex: Codable {
    var schemaVersion = 2
    var mediaType: String? = OCIMediaType.index
    var manifests: [OCIDescriptor]
}

struct OCIManifest: Codable {
    var schemaVersion = 2
    var mediaType: String? = OCIMediaType.manifest
    var config: OCIDescriptor
    var layers: [OCIDescriptor]
    var annotations: [String: String]?
}

struct OCIImageConfig: Codable {
    struct RootFS: Codable {
        var type = "layers"
        var diff_ids: [String]
    }

    struct History: Codable {
        var created: String?
        var created_by: String?
    }

    var created: String?
    var architecture: String
    var os: String
    var rootfs: RootFS
    var history: [History]?
}

extension JSONEncoder {
    static var oci: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
