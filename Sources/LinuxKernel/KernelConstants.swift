/// Kernel constants glibc does not export to Swift (or exports under a macro the importer
/// cannot read), named once here instead of as commented literals at each call.
public enum OpenFlag {
    public static let path: Int32 = 0o10000000        // O_PATH
}

/// openat2(2)'s resolve flags.
public enum ResolveFlag {
    public static let noMagicLinks: UInt64 = 0x02     // RESOLVE_NO_MAGICLINKS
    public static let inRoot: UInt64 = 0x10           // RESOLVE_IN_ROOT
}

/// fcntl(2) commands for pipes and seals.
public enum FileControl {
    public static let setPipeSize: Int32 = 1031       // F_SETPIPE_SZ
    public static let getPipeSize: Int32 = 1032       // F_GETPIPE_SZ
    public static let addSeals: Int32 = 1033          // F_ADD_SEALS
    public static let getSeals: Int32 = 1034          // F_GET_SEALS
}

/// lseek(2) whences that find the data of a sparse file.
public enum SeekWhence {
    public static let data: Int32 = 3                 // SEEK_DATA
    public static let hole: Int32 = 4                 // SEEK_HOLE
}

/// kcmp(2) types.
public enum KcmpType {
    public static let file = 0                        // KCMP_FILE
    public static let files = 2, fs = 3               // KCMP_FILES, KCMP_FS
    public static let epollTfd = 7                    // KCMP_EPOLL_TFD
}

/// memfd_create(2) flags.
public enum MemfdFlag {
    public static let cloexec = 1                     // MFD_CLOEXEC
    public static let allowSealing = 2                // MFD_ALLOW_SEALING
}

/// mremap(2) flags: move to exactly the given address.
public enum MremapFlag {
    public static let mayMoveFixed = 3                // MREMAP_MAYMOVE | MREMAP_FIXED
}

/// shmat(2) flags.
public enum ShmFlag {
    public static let readOnly = 0o10000              // SHM_RDONLY
    public static let exec = 0o100000                 // SHM_EXEC
}

/// seccomp(SECCOMP_SET_MODE_FILTER) flags.
public enum SeccompFlag {
    public static let tsync: UInt32 = 1
}
