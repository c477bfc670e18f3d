// Values that CRIU's images carry in plain integer fields, defined once so that a dump and
// a restore (and crit) agree on them.

/// vma_entry.status (criu/include/image.h, VMA_AREA_* and VMA_*).
public enum VmaStatus {
    public static let regular: UInt32 = 1 << 0, stack: UInt32 = 1 << 1, vsyscall: UInt32 = 1 << 2, vdso: UInt32 = 1 << 3
    public static let heap: UInt32 = 1 << 5, filePrivate: UInt32 = 1 << 6, fileShared: UInt32 = 1 << 7
    public static let anonShared: UInt32 = 1 << 8, anonPrivate: UInt32 = 1 << 9, sysvIPC: UInt32 = 1 << 10, vvar: UInt32 = 1 << 12
    /// A mapping of a memfd (VMA_AREA_MEMFD): shmid names its memfd entry in files.img.
    public static let memfd: UInt32 = 1 << 14
}

/// pagemap_entry.flags (criu/include/pagemap.h, PE_*).
public enum PageFlags {
    public static let parent: UInt32 = 1, lazy: UInt32 = 2, present: UInt32 = 4
}

/// task_core_entry.task_state (compel's COMPEL_TASK_*).
public enum TaskState {
    public static let alive: UInt32 = 1, dead: UInt32 = 2, stopped: UInt32 = 3, zombie: UInt32 = 6
}

/// file_lock_entry.flag: the kernel's FL_* kind of lock (criu/include/file-lock.h).
public enum FileLockFlags {
    public static let posix: UInt32 = 1, flock: UInt32 = 2, ofd: UInt32 = 4, lease: UInt32 = 8
}

/// unix_sk_entry.uflags (criu/include/sockets.h, USK_*).
public enum UnixSocketFlags {
    /// A peer outside the dumped tree, recorded so its name can be connected to again.
    public static let external: UInt32 = 1
}

/// unix_sk_entry.state and inet_sk_entry.state: the kernel's TCP_* states, which UNIX
/// sockets use too (established or listening).
public enum SocketState {
    public static let established: UInt32 = 1, close: UInt32 = 7, listen: UInt32 = 10
    public static let names: [UInt32: String] = [
        1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
        6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
    ]
}

/// eventfd_file_entry.flags: EFD_SEMAPHORE travels as bit 0 of the flags. An eventfd is
/// always O_RDWR, so the access-mode bit is free, and CRIU ignores it when it sets file
/// status flags.
public enum EventfdFlags {
    public static let semaphore: UInt32 = 1
}

/// Sizes CRIU's restore checks images against.
public enum CriuLimits {
    /// mm_entry.mm_saved_auxv holds at most AT_VECTOR_SIZE words (x86_64: 44).
    public static let auxvWords = 44
}
