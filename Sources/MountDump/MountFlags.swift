import ProcFS

/// MS_* bits of mount(2), as CRIU's mnt_entry carries them in `flags` (per mount, plus
/// the propagation bits) and `sb_flags` (per superblock).
public struct MountFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let readOnly = MountFlags(rawValue: 0x1)
    public static let noSuid = MountFlags(rawValue: 0x2)
    public static let noDev = MountFlags(rawValue: 0x4)
    public static let noExec = MountFlags(rawValue: 0x8)
    public static let synchronous = MountFlags(rawValue: 0x10)
    public static let remount = MountFlags(rawValue: 0x20)
    public static let mandatoryLock = MountFlags(rawValue: 0x40)
    public static let dirSync = MountFlags(rawValue: 0x80)
    public static let noSymFollow = MountFlags(rawValue: 0x100)
    public static let noAtime = MountFlags(rawValue: 0x400)
    public static let noDirAtime = MountFlags(rawValue: 0x800)
    public static let bind = MountFlags(rawValue: 0x1000)
    public static let recursive = MountFlags(rawValue: 0x4000)
    public static let unbindable = MountFlags(rawValue: 0x2_0000)
    public static let `private` = MountFlags(rawValue: 0x4_0000)
    public static let slave = MountFlags(rawValue: 0x8_0000)
    public static let shared = MountFlags(rawValue: 0x10_0000)
    public static let relAtime = MountFlags(rawValue: 0x20_0000)
    public static let strictAtime = MountFlags(rawValue: 0x100_0000)
    public static let lazyTime = MountFlags(rawValue: 0x200_0000)

    public static let propagation: MountFlags = [.unbindable, .private, .slave, .shared]
    /// What a bind remount (or mount_setattr) can change on one mount.
    public static let perMount: MountFlags = [.readOnly, .noSuid, .noDev, .noExec, .noSymFollow,
                                              .noAtime, .noDirAtime, .relAtime]

    private static let perMountNames: [String: MountFlags] = [
        "ro": .readOnly, "nosuid": .noSuid, "nodev": .noDev, "noexec": .noExec,
        "nosymfollow": .noSymFollow, "noatime": .noAtime, "nodiratime": .noDirAtime,
        "relatime": .relAtime,
    ]
    private static let superblockNames: [String: MountFlags] = [
        "ro": .readOnly, "sync": .synchronous, "dirsync": .dirSync, "mand": .mandatoryLock,
        "lazytime": .lazyTime,
    ]

    /// The per-mount flags of a mountinfo options field ("ro,nosuid,relatime").
    public static func perMount(_ options: String) -> MountFlags {
        var flags: MountFlags = []
        for option in options.split(separator: ",") {
            if let flag = perMountNames[String(option)] { flags.insert(flag) }
        }
        return flags
    }

    /// A mountinfo super-options field split as CRIU splits it: the flags it names
    /// ("ro", "sync", ...) and the remaining options, still escaped, comma-joined.
    public static func superblock(_ options: String) -> (flags: MountFlags, options: String) {
        var flags: MountFlags = []
        var rest: [Substring] = []
        for option in options.split(separator: ",") {
            if option == "rw" { continue }
            if let flag = superblockNames[String(option)] { flags.insert(flag) } else { rest.append(option) }
        }
        return (flags, rest.joined(separator: ","))
    }

    /// The propagation bits of a mountinfo line's optional fields.
    public static func propagation(of mount: MountInfoEntry) -> MountFlags {
        var flags: MountFlags = []
        if mount.sharedGroup != nil { flags.insert(.shared) }
        if mount.masterGroup != nil { flags.insert(.slave) }
        if mount.isUnbindable { flags.insert(.unbindable) }
        return flags
    }

    /// Neither noatime nor relatime shown means strictatime: mount(2) would default to relatime.
    var atimeForRemount: MountFlags {
        if contains(.noAtime) { return .noAtime }
        if contains(.relAtime) { return .relAtime }
        return .strictAtime
    }
}
