import ProcFS
import Images

extension MntEntry {
    /// The image entry CRIU writes for one mountinfo line: mount point as the task sees it
    /// (the root mount is "/"), the superblock's device in the kernel's encoding, per-mount
    /// flags with the propagation bits, superblock flags split from the fs options, and
    /// `ext_key` when the caller named the mount point external.
    public init(_ mount: MountInfoEntry, externalKey: String?) {
        self.init()
        fstype = UInt32((FileSystemType.named(mount.fsType)?.code ?? .unsupported).rawValue)
        mntID = UInt32(truncatingIfNeeded: mount.mountID)
        rootDev = MntEntry.kernelDevice(major: mount.devMajor, minor: mount.devMinor)
        parentMntID = UInt32(truncatingIfNeeded: mount.parentID)
        flags = MountFlags.perMount(mount.mountOptions).union(MountFlags.propagation(of: mount)).rawValue
        root = mount.root
        mountpoint = mount.mountPoint
        source = mount.source
        let sb = MountFlags.superblock(mount.superOptions)
        options = sb.options
        sbFlags = sb.flags.rawValue
        if let shared = mount.sharedGroup { sharedID = UInt32(truncatingIfNeeded: shared) }
        if let master = mount.masterGroup { masterID = UInt32(truncatingIfNeeded: master) }
        if let externalKey { extKey = externalKey }
    }

    /// dev_t as the kernel keeps it (major << 20 | minor), which CRIU writes as root_dev.
    public static func kernelDevice(major: UInt32, minor: UInt32) -> UInt32 {
        (major << 20) | (minor & 0xF_FFFF)
    }

    public var mountFlags: MountFlags { MountFlags(rawValue: flags) }
    public var superblockFlags: MountFlags { MountFlags(rawValue: hasSbFlags ? sbFlags : 0) }

    /// The key of an external mount: `ext_key`, or for old images (ext_mount set) the root.
    public var externalKey: String? {
        if hasExtKey { return extKey }
        if hasExtMount && extMount { return root }
        return nil
    }

    /// The name the raw image of this tmpfs's contents has (CRIU keys it by superblock).
    public var tmpfsImageName: ImageName { .tmpfsDev(rootDev) }
    /// The older name, keyed by mount id, that CRIU still reads.
    public var legacyTmpfsImageName: ImageName { .tmpfs(mntID) }
}

/// Paths as mountinfo writes them: absolute, no trailing slash except "/".
enum MountPath {
    /// Whether `path` is `base` or below it.
    static func isWithin(_ path: String, _ base: String) -> Bool {
        if base == "/" { return path.hasPrefix("/") }
        return path == base || path.hasPrefix(base + "/")
    }

    /// `path` relative to `base`, as "" (the same) or "/rest".
    static func relative(_ path: String, to base: String) -> String {
        if base == "/" { return path == "/" ? "" : path }
        return String(path.dropFirst(base.count))
    }

    /// `rest` ("" or "/x") appended to `base`.
    static func join(_ base: String, _ rest: String) -> String {
        if rest.isEmpty { return base }
        return base == "/" ? rest : base + rest
    }

    /// The path without its leading "/", for *at() calls relative to a root ("." for "/").
    static func relativeToRoot(_ path: String) -> String {
        let trimmed = path.drop { $0 == "/" }
        return trimmed.isEmpty ? "." : String(trimmed)
    }
}
