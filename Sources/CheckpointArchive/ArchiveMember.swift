/// How an archive's tar stream is compressed. Reading detects it by itself.
public enum ArchiveCompression: String, Sendable, CaseIterable {
    case zstd, gzip, none
}

/// One member of a checkpoint archive as its header describes it.
public struct ArchiveMember: Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case file, directory, symlink, hardlink
    }

    /// Relative path inside the archive, without "./" or a trailing slash.
    public let name: String
    public let kind: Kind
    /// Logical size in bytes of a file (holes of a sparse file included); 0 for the rest.
    public let size: Int64

    public init(name: String, kind: Kind, size: Int64) {
        self.name = name
        self.kind = kind
        self.size = size
    }
}
