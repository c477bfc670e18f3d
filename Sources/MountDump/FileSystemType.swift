import Images

/// The file system types a container's mounts may have, with CRIU's code for each
/// (mnt.proto's fstype) and how a mount of it is made again.
public struct FileSystemType: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// Made fresh by mount(2); the kernel provides the contents (proc, sysfs, cgroup...).
        /// A mount of a subdirectory is made by mounting the whole and binding the part.
        case pseudo
        /// Made fresh; the contents come from the image (tmpfs-dev-N.tar.gz.img).
        case tmpfs
        /// Made fresh, but only whole: its contents are not the kernel's to recreate
        /// (a devpts instance, the one devtmpfs, an overlay over host directories).
        case whole
    }

    public let name: String
    public let code: Fstype
    public let kind: Kind

    static let known: [FileSystemType] = [
        .init(name: "proc", code: .proc, kind: .pseudo),
        .init(name: "sysfs", code: .sysfs, kind: .pseudo),
        .init(name: "devtmpfs", code: .devtmpfs, kind: .whole),
        .init(name: "binfmt_misc", code: .binfmtMisc, kind: .pseudo),
        .init(name: "tmpfs", code: .tmpfs, kind: .tmpfs),
        .init(name: "devpts", code: .devpts, kind: .whole),
        .init(name: "pstore", code: .pstore, kind: .pseudo),
        .init(name: "securityfs", code: .securityfs, kind: .pseudo),
        .init(name: "fusectl", code: .fusectl, kind: .pseudo),
        .init(name: "debugfs", code: .debugfs, kind: .pseudo),
        .init(name: "cgroup", code: .cgroup, kind: .pseudo),
        .init(name: "mqueue", code: .mqueue, kind: .pseudo),
        .init(name: "overlay", code: .overlayfs, kind: .whole),
        .init(name: "tracefs", code: .tracefs, kind: .pseudo),
        .init(name: "cgroup2", code: .cgroup2, kind: .pseudo),
    ]

    /// The type named in mountinfo, or nil for one we cannot make again.
    public static func named(_ name: String) -> FileSystemType? {
        known.first { $0.name == name }
    }

    /// The type an image entry records, or nil when it is UNSUPPORTED (or unknown to us).
    public static func of(_ entry: MntEntry) -> FileSystemType? {
        if entry.fstype == UInt32(Fstype.auto.rawValue) { return entry.hasFsname ? named(entry.fsname) : nil }
        return known.first { UInt32($0.code.rawValue) == entry.fstype }
    }
}
