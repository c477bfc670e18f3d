/// One line of /proc/PID/maps (with the VmFlags of smaps when read from there).
public struct MemoryArea: Equatable, Sendable {
    public var start: UInt64
    public var end: UInt64
    public var readable: Bool
    public var writable: Bool
    public var executable: Bool
    public var shared: Bool
    public var offset: UInt64
    public var devMajor: UInt32
    public var devMinor: UInt32
    public var inode: UInt64
    /// Exactly what maps shows after the inode: "", "[heap]", "/x/y (deleted)", "[anon:name]"...
    public var path: String
    /// Two-letter VmFlags from smaps ("rd", "wr", "gd", "dd"...); empty when parsed from maps.
    public var vmFlags: Set<String>

    public init(start: UInt64, end: UInt64,
                readable: Bool, writable: Bool, executable: Bool, shared: Bool,
                offset: UInt64 = 0, devMajor: UInt32 = 0, devMinor: UInt32 = 0, inode: UInt64 = 0,
                path: String = "", vmFlags: Set<String> = []) {
        self.start = start
        self.end = end
        self.readable = readable
        self.writable = writable
        self.executable = executable
        self.shared = shared
        self.offset = offset
        self.devMajor = devMajor
        self.devMinor = devMinor
        self.inode = inode
        self.path = path
        self.vmFlags = vmFlags
    }

    public var size: UInt64 { end - start }

    /// Kernel-provided areas that a restore moves into place rather than recreates.
    public var isSpecial: Bool {
        path == "[vdso]" || path == "[vvar]" || path == "[vvar_vclock]" || path == "[vsyscall]"
    }

    /// Memory whose contents exist only in RAM: private anonymous ([heap], [stack],
    /// [anon:name], unnamed) and shared anonymous (MAP_SHARED|MAP_ANONYMOUS, SysV shm).
    public var isAnonymous: Bool {
        if isSharedAnonymous { return true }
        return inode == 0 && devMajor == 0 && devMinor == 0 && !isSpecial
    }

    /// shmem-backed anonymous memory: the kernel names it after a deleted /dev/zero or a
    /// SysV key, or "[anon_shmem:name]" once named with PR_SET_VMA_ANON_NAME.
    public var isSharedAnonymous: Bool {
        shared && (path == "/dev/zero (deleted)" || path.hasPrefix("/SYSV")
                   || path.hasPrefix("[anon_shmem"))
    }

    /// A file mapping whose file was unlinked (including memfd files, which never had a name).
    public var isDeletedFile: Bool {
        path.hasPrefix("/") && path.hasSuffix(MemoryArea.deletedSuffix) && !isSharedAnonymous
    }

    public var isMemfd: Bool { path.hasPrefix("/memfd:") }

    public var isFileBacked: Bool { path.hasPrefix("/") && !isSharedAnonymous }

    /// The path without the " (deleted)" the kernel appends to unlinked files.
    public var filePath: String {
        guard path.hasSuffix(MemoryArea.deletedSuffix) else { return path }
        return String(path.dropLast(MemoryArea.deletedSuffix.count))
    }

    public var isGuardOrNoAccess: Bool { !readable && !writable && !executable }

    static let deletedSuffix = " (deleted)"
}
