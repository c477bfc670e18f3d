/// One image file of a checkpoint: a kind and, for a kind named per object, its id
/// (`.core(pid)` is "core-PID.img", `.ghostFile(remapID)` is "ghost-file-HEX.img").
public struct ImageName: Hashable, Sendable, CustomStringConvertible {
    public let kind: ImageKind
    public let id: UInt64?

    /// A kind with one file per checkpoint (`ImageName(.files)`).
    public init(_ kind: ImageKind) {
        precondition(!kind.hasID, "image \(kind) is named by an id")
        self.kind = kind
        id = nil
    }

    /// One file of a kind named by an id.
    public init(_ kind: ImageKind, _ id: some BinaryInteger) {
        precondition(kind.hasID, "image \(kind) has no id")
        self.kind = kind
        self.id = UInt64(id)
    }

    /// The file name, spelled as CRIU spells it.
    public var fileName: String {
        guard let id else { return kind.template }
        return kind.prefix + String(id, radix: kind.hexID ? 16 : 10) + kind.suffix
    }

    public var description: String { fileName }

    /// Whether a restore could read `fileName` as an image: a name of the catalogue, or
    /// any other `.img` file (a kind the engine does not know yet is still an image).
    public static func isImageFile(_ fileName: String) -> Bool {
        ImageName(fileName: fileName) != nil || fileName.hasSuffix(".img")
    }

    /// The image a file name (or a path ending in one) names; nil for any other file.
    public init?(fileName: String) {
        let name = Substring(fileName.split(separator: "/", omittingEmptySubsequences: false).last ?? "")
        guard let image = ImageKind.all.lazy.compactMap({ Self.named(name, as: $0) }).first else { return nil }
        self = image
    }

    /// The image of kind `kind` a file name names; nil for any other file.
    public init?(fileName: String, kind: ImageKind) {
        guard let image = Self.named(Substring(fileName), as: kind) else { return nil }
        self = image
    }

    private static func named(_ name: Substring, as kind: ImageKind) -> ImageName? {
        guard kind.hasID else { return name == kind.template ? ImageName(kind) : nil }
        guard name.hasPrefix(kind.prefix), name.hasSuffix(kind.suffix),
              name.count > kind.prefix.count + kind.suffix.count else { return nil }
        let digits = name.dropFirst(kind.prefix.count).dropLast(kind.suffix.count)
        let valid = kind.hexID ? digits.allSatisfy(\.isHexDigit) : digits.allSatisfy(\.isASCIIDigit)
        guard valid, let id = UInt64(digits, radix: kind.hexID ? 16 : 10) else { return nil }
        return ImageName(kind, id)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

// The images the engine names, one spelling each.
extension ImageName {
    public static let inventory = ImageName(.inventory)
    public static let pstree = ImageName(.pstree)
    public static func core(_ tid: some BinaryInteger) -> ImageName { ImageName(.core, tid) }
    public static func ids(_ pid: some BinaryInteger) -> ImageName { ImageName(.ids, pid) }
    public static func mm(_ pid: some BinaryInteger) -> ImageName { ImageName(.mm, pid) }
    public static func pagemap(_ pid: some BinaryInteger) -> ImageName { ImageName(.pagemap, pid) }
    public static func pagemapShmem(_ shmid: some BinaryInteger) -> ImageName { ImageName(.pagemapShmem, shmid) }
    public static func pages(_ id: some BinaryInteger) -> ImageName { ImageName(.pages, id) }
    public static func sigacts(_ pid: some BinaryInteger) -> ImageName { ImageName(.sigacts, pid) }
    public static func itimers(_ pid: some BinaryInteger) -> ImageName { ImageName(.itimers, pid) }
    public static func posixTimers(_ pid: some BinaryInteger) -> ImageName { ImageName(.posixTimers, pid) }
    public static func creds(_ pid: some BinaryInteger) -> ImageName { ImageName(.creds, pid) }
    public static func fs(_ pid: some BinaryInteger) -> ImageName { ImageName(.fs, pid) }
    public static func rlimit(_ pid: some BinaryInteger) -> ImageName { ImageName(.rlimit, pid) }
    public static func signalShared(_ pid: some BinaryInteger) -> ImageName { ImageName(.signalShared, pid) }
    public static func signalPrivate(_ tid: some BinaryInteger) -> ImageName { ImageName(.signalPrivate, tid) }
    public static let seccomp = ImageName(.seccomp)
    public static let apparmor = ImageName(.apparmor)
    public static let cgroup = ImageName(.cgroup)
    public static let cpuinfo = ImageName(.cpuinfo)

    public static func fdinfo(_ filesID: some BinaryInteger) -> ImageName { ImageName(.fdinfo, filesID) }
    public static let files = ImageName(.files)
    public static let regFiles = ImageName(.regFiles)
    public static let extFiles = ImageName(.extFiles)
    public static let nsFiles = ImageName(.nsFiles)
    public static let remapFpath = ImageName(.remapFpath)
    public static func ghostFile(_ remapID: some BinaryInteger) -> ImageName { ImageName(.ghostFile, remapID) }
    public static let memfd = ImageName(.memfd)
    public static let pipes = ImageName(.pipes)
    public static let pipesData = ImageName(.pipesData)
    public static let fifo = ImageName(.fifo)
    public static let fifoData = ImageName(.fifoData)
    public static let eventfd = ImageName(.eventfd)
    public static let eventpoll = ImageName(.eventpoll)
    public static let eventpollTfd = ImageName(.eventpollTfd)
    public static let signalfd = ImageName(.signalfd)
    public static let timerfd = ImageName(.timerfd)
    public static let inotify = ImageName(.inotify)
    public static let inotifyWd = ImageName(.inotifyWd)
    public static let fanotify = ImageName(.fanotify)
    public static let fanotifyMark = ImageName(.fanotifyMark)
    public static let tunfile = ImageName(.tunfile)
    public static let fileLocks = ImageName(.fileLocks)
    public static let bpfmapFile = ImageName(.bpfmapFile)
    public static let bpfmapData = ImageName(.bpfmapData)
    public static let mqueue = ImageName(.mqueue)

    public static let tty = ImageName(.tty)
    public static let ttyInfo = ImageName(.ttyInfo)
    public static let ttyData = ImageName(.ttyData)

    public static let unixsk = ImageName(.unixsk)
    public static let inetsk = ImageName(.inetsk)
    public static let packetsk = ImageName(.packetsk)
    public static let netlinksk = ImageName(.netlinksk)
    public static let skQueues = ImageName(.skQueues)
    public static func tcpStream(_ inode: some BinaryInteger) -> ImageName { ImageName(.tcpStream, inode) }

    public static func utsns(_ id: some BinaryInteger) -> ImageName { ImageName(.utsns, id) }
    public static func ipcnsVar(_ id: some BinaryInteger) -> ImageName { ImageName(.ipcnsVar, id) }
    public static func ipcnsShm(_ id: some BinaryInteger) -> ImageName { ImageName(.ipcnsShm, id) }
    public static func ipcnsMsg(_ id: some BinaryInteger) -> ImageName { ImageName(.ipcnsMsg, id) }
    public static func ipcnsSem(_ id: some BinaryInteger) -> ImageName { ImageName(.ipcnsSem, id) }
    public static func userns(_ id: some BinaryInteger) -> ImageName { ImageName(.userns, id) }
    public static func timens(_ id: some BinaryInteger) -> ImageName { ImageName(.timens, id) }
    public static func pidns(_ id: some BinaryInteger) -> ImageName { ImageName(.pidns, id) }
    public static func netns(_ id: some BinaryInteger) -> ImageName { ImageName(.netns, id) }
    public static func netdev(_ id: some BinaryInteger) -> ImageName { ImageName(.netdev, id) }

    public static func mountpoints(_ mntNsID: some BinaryInteger) -> ImageName { ImageName(.mountpoints, mntNsID) }
    public static func tmpfs(_ mountID: some BinaryInteger) -> ImageName { ImageName(.tmpfs, mountID) }
    public static func tmpfsDev(_ rootDev: some BinaryInteger) -> ImageName { ImageName(.tmpfsDev, rootDev) }

    public static let statsDump = ImageName(.statsDump)
    public static let statsRestore = ImageName(.statsRestore)
    public static let irmapCache = ImageName(.irmapCache)
}
