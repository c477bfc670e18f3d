import Foundation
import LinuxKernel
import CShim

/// The container's root filesystem in a checkpoint: rootfs-diff.tar with every entry that
/// differs from a base directory (all of them when there is no base), and deleted.files with
/// the base's entries that are gone, as podman writes them.
struct RootfsSnapshot {
    /// Relative paths to put into rootfs-diff.tar, parents before children.
    private(set) var changed: [String] = []
    /// Relative paths present in the base and missing from the rootfs (the topmost only).
    private(set) var deleted: [String] = []

    init(rootfs: String, base: String?) throws {
        guard isDirectory(rootfs) else { throw CheckpointError(.notFound, "root filesystem \(rootfs): not a directory") }
        if let base, !isDirectory(base) { throw CheckpointError(.notFound, "rootfs base \(base): not a directory") }
        try walk(rootfs: rootfs, base: base, relative: "")
    }

    private mutating func walk(rootfs: String, base: String?, relative: String) throws {
        let dir = relative.isEmpty ? rootfs : rootfs + "/" + relative
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted() } catch {
            throw CheckpointError(.invalidArgument, "read directory \(dir): \(error.localizedDescription)")
        }
        for name in names {
            let rel = relative.isEmpty ? name : relative + "/" + name
            var st = stat(), old = stat()
            guard lstat(rootfs + "/" + rel, &st) == 0 else { continue }  // gone meanwhile (leave-running)
            let inBase = base.map { lstat($0 + "/" + rel, &old) == 0 } ?? false
            if !inBase || Self.differs(st, old, rootfs + "/" + rel, base.map { $0 + "/" + rel }) { changed.append(rel) }
            if st.st_mode & S_IFMT == S_IFDIR { try walk(rootfs: rootfs, base: inBase ? base : nil, relative: rel) }
        }
        guard let base, isDirectory(base + (relative.isEmpty ? "" : "/" + relative)) else { return }
        let present = Set(names)
        let baseDir = relative.isEmpty ? base : base + "/" + relative
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: baseDir)) ?? []).sorted() where !present.contains(name) {
            deleted.append(relative.isEmpty ? name : relative + "/" + name)
        }
    }

    /// Metadata tells; a directory counts as changed only when its own attributes are.
    private static func differs(_ a: stat, _ b: stat, _ path: String, _ basePath: String?) -> Bool {
        if a.st_mode != b.st_mode || a.st_uid != b.st_uid || a.st_gid != b.st_gid { return true }
        switch a.st_mode & S_IFMT {
        case S_IFDIR: return false
        case S_IFLNK:
            let fm = FileManager.default
            return (try? fm.destinationOfSymbolicLink(atPath: path)) != basePath.flatMap { try? fm.destinationOfSymbolicLink(atPath: $0) }
        case S_IFREG:
            return a.st_size != b.st_size || a.st_mtim.tv_sec != b.st_mtim.tv_sec || a.st_mtim.tv_nsec != b.st_mtim.tv_nsec
        default:
            return a.st_rdev != b.st_rdev
        }
    }

    func writeDeletedFiles(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        try writeFile(path, try encoder.encode(deleted))
    }

    /// Removes what deleted.files lists from a rootfs rebuilt from a base.
    static func applyDeletions(_ listPath: String, in rootfs: String) throws {
        guard let data = FileManager.default.contents(atPath: listPath) else { return }
        let list: [String]
        do { list = try JSONDecoder().decode([String].self, from: data) } catch {
            throw CheckpointError(.image, "\(listPath): not a JSON list of paths")
        }
        // podman lists paths as the container sees them ("/etc/group"): inside the rootfs too.
        for listed in list {
            let rel = String(listed.drop { $0 == "/" })
            let parts = rel.split(separator: "/")
            guard !parts.contains(".."), !parts.isEmpty else {
                throw CheckpointError(.image, "\(listPath): \(rel) is not a path inside the root filesystem")
            }
            // The parent is resolved inside the rootfs: a symlink in it must not lead out.
            let parent = parts.dropLast().joined(separator: "/")
            guard let dir = try? openInRoot(rootfs, parent.isEmpty ? "." : parent) else { continue }
            defer { close(dir) }
            try? FileManager.default.removeItem(atPath: "/proc/self/fd/\(dir)/\(parts.last!)")
        }
    }

    private static func openInRoot(_ root: String, _ path: String) throws -> Int32 {
        let rootFd = open(root, OpenFlag.path | O_DIRECTORY | O_CLOEXEC)
        if rootFd < 0 { throw CheckpointError.errno("open \(root)") }
        defer { close(rootFd) }
        return try Syscall.openat2(rootFd, path, flags: OpenFlag.path | O_DIRECTORY | O_CLOEXEC,
                                   resolve: ResolveFlag.inRoot | ResolveFlag.noMagicLinks).get("open \(path) inside \(root)")
    }
}

func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
}
