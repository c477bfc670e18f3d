import Foundation

/// The last member of every archive: what each member must be, so that unpacking can refuse
/// a damaged, truncated or altered archive. Integrity, not authenticity: whoever can rewrite
/// the archive can rewrite this too.
struct ArchiveManifest: Codable {
    static let memberName = "ocicheckpoint.manifest.json"
    static let formatName = "ocicheckpoint-archive"

    struct Entry: Codable, Equatable {
        var name: String
        var kind: ArchiveMember.Kind
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
        /// Files only: logical size and the SHA-256 of the logical content (holes read as zeros).
        var size: Int64?
        var sha256: String?
        /// Link target for symlinks and hardlinks.
        var target: String?
    }

    var format = ArchiveManifest.formatName
    var version = 1
    var members: [Entry]

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try encoder.encode(self)
    }

    static func decode(_ data: Data, archive: String) throws -> ArchiveManifest {
        let manifest: ArchiveManifest
        do {
            manifest = try JSONDecoder().decode(ArchiveManifest.self, from: data)
        } catch {
            throw ArchiveError.damaged(archive, "its manifest is not valid JSON (\(error.localizedDescription))")
        }
        guard manifest.format == formatName, manifest.version == 1 else {
            throw ArchiveError.damaged(archive, "manifest format \(manifest.format) version \(manifest.version) is not supported")
        }
        return manifest
    }
}
