import Foundation
import LinuxKernel
import CArchive  // sys/xattr.h

/// A podman container's root filesystem changes against its image, read from the overlay
/// upper directory (which outlives the container's exit and unmount, unlike the merged
/// view), in the shape podman's export gives them: rootfs-diff.tar holds added entries and
/// changed non-directories, deleted.files the paths gone from the image. Whiteouts (0:0
/// character devices) are deletions; an opaque directory hides every lower entry under it.
struct OverlayDiff {
    /// Relative to the upper directory, parents before children.
    private(set) var changed: [String] = []
    /// Absolute paths inside the container, as podman's deleted.files lists them.
    private(set) var deleted: [String] = []

    /// What podman itself makes in every container's rootfs; `podman diff` leaves these out
    /// (libpod's containerMounts), and the restore makes them again.
    static let podmanMounts: Set<String> = ["/dev", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/proc",
                                            "/run", "/run/.containerenv", "/run/secrets", "/sys", "/etc/mtab"]

    init(upper: String, lowers: [String], bindMounts: Set<String>) throws {
        guard isDirectory(upper) else { throw CheckpointError(.notFound, "overlay upper directory \(upper): not a directory") }
        try walk(upper: upper, lowers: lowers, skip: Self.podmanMounts.union(bindMounts), relative: "")
    }

    private mutating func walk(upper: String, lowers: [String], skip: Set<String>, relative: String) throws {
        let dir = relative.isEmpty ? upper : upper + "/" + relative
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted() } catch {
            throw CheckpointError(.invalidArgument, "read directory \(dir): \(error.localizedDescription)")
        }
        for name in names {
            let rel = relative.isEmpty ? name : relative + "/" + name
            var st = stat()
            guard lstat(upper + "/" + rel, &st) == 0 else { continue }
            if st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == 0 {
                if inLower(lowers, rel) { deleted.append("/" + rel) }
                continue
            }
            let isDir = st.st_mode & S_IFMT == S_IFDIR
            let existed = inLower(lowers, rel)
            if !skip.contains("/" + rel) && (!existed || !isDir) { changed.append(rel) }
            guard isDir else { continue }
            if existed && Self.isOpaque(upper + "/" + rel) {
                let present = Set((try? FileManager.default.contentsOfDirectory(atPath: upper + "/" + rel)) ?? [])
                var hidden = Set<String>()
                for lower in lowers { hidden.formUnion((try? FileManager.default.contentsOfDirectory(atPath: lower + "/" + rel)) ?? []) }
                deleted += hidden.subtracting(present).sorted().map { "/" + rel + "/" + $0 }
                try walk(upper: upper, lowers: [], skip: skip, relative: rel)
            } else {
                try walk(upper: upper, lowers: existed ? lowers : [], skip: skip, relative: rel)
            }
        }
    }

    private func inLower(_ lowers: [String], _ rel: String) -> Bool {
        var st = stat()
        return lowers.contains { lstat($0 + "/" + rel, &st) == 0 }
    }

    /// overlayfs marks a directory that replaced a lower one (as root: trusted.*; in user
    /// namespaces with userxattr: user.*).
    private static func isOpaque(_ path: String) -> Bool {
        ["trusted.overlay.opaque", "user.overlay.opaque"].contains { key in
            var value: UInt8 = 0
            return lgetxattr(path, key, &value, 1) == 1 && value == UInt8(ascii: "y")
        }
    }

    func writeDeletedFiles(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        try writeFile(path, try encoder.encode(deleted))
    }
}
