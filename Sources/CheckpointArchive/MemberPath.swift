/// The rules a member's name and link target must follow before anything is written: relative,
/// no "..", and links that stay inside the directory being extracted.
enum MemberPath {
    enum Refusal: Error { case reason(String) }

    /// The member's name without "./" parts or a trailing slash; nil for the root itself ("./").
    static func normalize(_ raw: String) throws -> String? {
        guard !raw.isEmpty else { throw Refusal.reason("a member has an empty name") }
        guard !raw.hasPrefix("/") else { throw Refusal.reason("member \(raw) has an absolute path") }
        let parts = raw.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        guard !parts.contains("..") else { throw Refusal.reason("member \(raw) has a '..' component") }
        return parts.isEmpty ? nil : parts.joined(separator: "/")
    }

    /// Refuses a symlink whose target is absolute or climbs above the extraction root when
    /// read as a path (the kernel check after extraction catches links through other links).
    static func checkSymlink(_ name: String, target: String) throws {
        guard !target.hasPrefix("/") else {
            throw Refusal.reason("symlink \(name) points to the absolute path \(target), outside the archive")
        }
        var depth = name.split(separator: "/").count - 1
        for part in target.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            depth += part == ".." ? -1 : 1
            guard depth >= 0 else { throw Refusal.reason("symlink \(name) -> \(target) points outside the archive") }
        }
    }

    /// A hardlink must name a regular file member that came before it.
    static func checkHardlink(_ name: String, target raw: String, files: Set<String>) throws -> String {
        guard let target = try? normalize(raw), files.contains(target) else {
            throw Refusal.reason("hardlink \(name) -> \(raw) does not name an earlier file of the archive")
        }
        return target
    }
}
