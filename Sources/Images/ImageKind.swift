import SwiftProtobuf

/// One kind of image file, as CRIU's imgset_template (criu/image-desc.c) lists it: the
/// file-name pattern, the magic of its header and the protobuf message of its records.
/// A raw image (pages, tarballs, ip dumps) has no magic and no message. Name one file of a
/// kind with `ImageName` (`.core(pid)`, `.inventory`); nobody outside Images spells a name.
public struct ImageKind: Hashable, CustomStringConvertible, @unchecked Sendable {
    /// The name with CRIU's printf conversion for the id ("core-%u.img", "ghost-file-%x.img"),
    /// or the whole name for a kind with one file per checkpoint ("inventory.img").
    public let template: String
    public let magic: ImageMagic?
    /// The message of the records (for pagemap, the records after its `PagemapHead`; for
    /// ghost-file, pipes-data, sk-queues and tcp-stream, the one before each raw payload).
    public let message: (any SwiftProtobuf.Message.Type)?

    /// The name before the id ("core-" of "core-%u.img"), or the whole name.
    let prefix: String
    /// The name after the id (".img", ".tar.gz.img"), or "".
    let suffix: String
    /// Ids in hex (ghost files, TCP streams by socket inode) rather than decimal.
    let hexID: Bool

    init(_ template: String, _ magic: ImageMagic?, _ message: (any SwiftProtobuf.Message.Type)?) {
        self.template = template
        self.magic = magic
        self.message = message
        let percent = template.firstIndex(of: "%")
        prefix = String(template[..<(percent ?? template.endIndex)])
        // The conversion is one letter after an optional length ("%u", "%lu", "%x").
        suffix = percent.map { String(template[template.index(after: $0)...].drop { $0 == "l" }.dropFirst()) } ?? ""
        hexID = template.contains("%x")
    }

    /// A raw image: the bytes themselves, no header (CRIU's RAW_IMAGE_MAGIC).
    static func raw(_ template: String) -> ImageKind { ImageKind(template, nil, nil) }

    public static func == (a: ImageKind, b: ImageKind) -> Bool { a.template == b.template }
    public func hash(into hasher: inout Hasher) { hasher.combine(template) }
    public var description: String { template }

    /// Whether each file of this kind is named by an id (an object, a task, a namespace).
    public var hasID: Bool { prefix != template }

    // Tasks (per pid or tid), in the order of imgset_template.
    public static let inventory = ImageKind("inventory.img", .inventory, InventoryEntry.self)
    public static let pstree = ImageKind("pstree.img", .pstree, PstreeEntry.self)
    public static let core = ImageKind("core-%u.img", .core, CoreEntry.self)
    public static let ids = ImageKind("ids-%u.img", .ids, TaskKobjIdsEntry.self)
    public static let mm = ImageKind("mm-%u.img", .mm, MmEntry.self)
    /// Old images kept the VMAs apart from mm.
    public static let vmas = ImageKind("vmas-%u.img", .vmas, VmaEntry.self)
    public static let pagemap = ImageKind("pagemap-%lu.img", .pagemap, PagemapEntry.self)
    /// Shared anonymous memory and memfds, by shmid.
    public static let pagemapShmem = ImageKind("pagemap-shmem-%lu.img", .pagemap, PagemapEntry.self)
    public static let pages = ImageKind.raw("pages-%u.img")
    public static let pagesOld = ImageKind.raw("pages-%d.img")
    public static let shmemPagesOld = ImageKind.raw("pages-shmem-%ld.img")
    public static let sigacts = ImageKind("sigacts-%u.img", .sigacts, SaEntry.self)
    public static let itimers = ImageKind("itimers-%u.img", .itimers, ItimerEntry.self)
    public static let posixTimers = ImageKind("posix-timers-%u.img", .posixTimers, PosixTimerEntry.self)
    public static let creds = ImageKind("creds-%u.img", .creds, CredsEntry.self)
    public static let fs = ImageKind("fs-%u.img", .fs, FsEntry.self)
    public static let rlimit = ImageKind("rlimit-%u.img", .rlimit, RlimitEntry.self)
    public static let signalShared = ImageKind("signal-s-%u.img", .signal, SignalQueueEntry.self)
    public static let signalPrivate = ImageKind("signal-p-%u.img", .signal, SignalQueueEntry.self)
    public static let seccomp = ImageKind("seccomp.img", .seccomp, SeccompEntry.self)
    public static let apparmor = ImageKind("apparmor.img", .apparmor, ApparmorEntry.self)
    public static let cgroup = ImageKind("cgroup.img", .cgroup, CgroupEntry.self)
    public static let cpuinfo = ImageKind("cpuinfo.img", .cpuinfo, CpuinfoEntry.self)

    // Files: fdinfo by the files id of ids-PID.img, the descriptions in files.img.
    public static let fdinfo = ImageKind("fdinfo-%u.img", .fdinfo, FdinfoEntry.self)
    public static let files = ImageKind("files.img", .files, FileEntry.self)
    public static let regFiles = ImageKind("reg-files.img", .regFiles, RegFileEntry.self)
    public static let extFiles = ImageKind("ext-files.img", .extFiles, ExtFileEntry.self)
    public static let nsFiles = ImageKind("ns-files.img", .nsFiles, NsFileEntry.self)
    public static let remapFpath = ImageKind("remap-fpath.img", .remapFpath, RemapFilePathEntry.self)
    /// By remap id, in hex.
    public static let ghostFile = ImageKind("ghost-file-%x.img", .ghostFile, GhostFileEntry.self)
    public static let memfd = ImageKind("memfd.img", .memfd, MemfdInodeEntry.self)
    public static let pipes = ImageKind("pipes.img", .pipes, PipeEntry.self)
    public static let pipesData = ImageKind("pipes-data.img", .pipesData, PipeDataEntry.self)
    public static let fifo = ImageKind("fifo.img", .fifo, FifoEntry.self)
    public static let fifoData = ImageKind("fifo-data.img", .fifoData, PipeDataEntry.self)
    public static let eventfd = ImageKind("eventfd.img", .eventfd, EventfdFileEntry.self)
    public static let eventpoll = ImageKind("eventpoll.img", .eventpoll, EventpollFileEntry.self)
    public static let eventpollTfd = ImageKind("eventpoll-tfd.img", .eventpollTfd, EventpollTfdEntry.self)
    public static let signalfd = ImageKind("signalfd.img", .signalfd, SignalfdEntry.self)
    public static let timerfd = ImageKind("timerfd.img", .timerfd, TimerfdEntry.self)
    public static let inotify = ImageKind("inotify.img", .inotify, InotifyFileEntry.self)
    public static let inotifyWd = ImageKind("inotify-wd.img", .inotifyWd, InotifyWdEntry.self)
    public static let fanotify = ImageKind("fanotify.img", .fanotify, FanotifyFileEntry.self)
    public static let fanotifyMark = ImageKind("fanotify-mark.img", .fanotifyMark, FanotifyMarkEntry.self)
    public static let tunfile = ImageKind("tunfile.img", .tunfile, TunfileEntry.self)
    public static let fileLocks = ImageKind("filelocks.img", .fileLocks, FileLockEntry.self)
    public static let bpfmapFile = ImageKind("bpfmap-file.img", .bpfmapFile, BpfmapFileEntry.self)
    public static let bpfmapData = ImageKind("bpfmap-data.img", .bpfmapData, BpfmapDataEntry.self)
    /// Ours: POSIX message queues (CRIU has no such image).
    public static let mqueue = ImageKind("mqueue.img", .mqueue, MqueueEntry.self)

    // Terminals.
    public static let tty = ImageKind("tty.img", .tty, TtyFileEntry.self)
    public static let ttyInfo = ImageKind("tty-info.img", .ttyInfo, TtyInfoEntry.self)
    public static let ttyData = ImageKind("tty-data.img", .ttyData, TtyDataEntry.self)

    // Sockets.
    public static let unixsk = ImageKind("unixsk.img", .unixsk, UnixSkEntry.self)
    public static let inetsk = ImageKind("inetsk.img", .inetsk, InetSkEntry.self)
    public static let packetsk = ImageKind("packetsk.img", .packetsk, PacketSockEntry.self)
    public static let netlinksk = ImageKind("netlinksk.img", .netlinksk, NetlinkSkEntry.self)
    public static let skQueues = ImageKind("sk-queues.img", .skQueues, SkPacketEntry.self)
    /// By socket inode, in hex.
    public static let tcpStream = ImageKind("tcp-stream-%x.img", .tcpStream, TcpStreamEntry.self)

    // Namespaces, by the namespace ids of ids-PID.img.
    public static let utsns = ImageKind("utsns-%u.img", .utsns, UtsnsEntry.self)
    public static let ipcnsVar = ImageKind("ipcns-var-%u.img", .ipcVar, IpcVarEntry.self)
    public static let ipcnsShm = ImageKind("ipcns-shm-%u.img", .ipcnsShm, IpcShmEntry.self)
    public static let ipcnsMsg = ImageKind("ipcns-msg-%u.img", .ipcnsMsg, IpcMsgEntry.self)
    public static let ipcnsSem = ImageKind("ipcns-sem-%u.img", .ipcnsSem, IpcSemEntry.self)
    public static let userns = ImageKind("userns-%u.img", .userns, UsernsEntry.self)
    public static let timens = ImageKind("timens-%u.img", .timens, TimensEntry.self)
    public static let pidns = ImageKind("pidns-%u.img", .pidns, PidnsEntry.self)
    public static let netns = ImageKind("netns-%u.img", .netns, NetnsEntry.self)
    public static let netdev = ImageKind("netdev-%u.img", .netdev, NetDeviceEntry.self)
    public static let ifaddr = ImageKind.raw("ifaddr-%u.img")
    public static let route = ImageKind.raw("route-%u.img")
    public static let route6 = ImageKind.raw("route6-%u.img")
    public static let rule = ImageKind.raw("rule-%u.img")
    public static let iptables = ImageKind.raw("iptables-%u.img")
    public static let ip6tables = ImageKind.raw("ip6tables-%u.img")
    public static let nftables = ImageKind.raw("nftables-%u.img")
    public static let netnsConntrack = ImageKind.raw("netns-ct-%u.img")
    public static let netnsExpectations = ImageKind.raw("netns-exp-%u.img")

    // Mounts, by mount namespace id; tmpfs contents by mount id (old) or by device.
    public static let mountpoints = ImageKind("mountpoints-%u.img", .mountpoints, MntEntry.self)
    public static let tmpfs = ImageKind.raw("tmpfs-%u.tar.gz.img")
    public static let tmpfsDev = ImageKind.raw("tmpfs-dev-%u.tar.gz.img")
    public static let autofs = ImageKind("autofs-%u.img", .autofs, AutofsEntry.self)
    public static let binfmtMiscOld = ImageKind("binfmt-misc-%u.img", .binfmtMisc, BinfmtMiscEntry.self)
    public static let binfmtMisc = ImageKind("binfmt-misc.img", .binfmtMisc, BinfmtMiscEntry.self)

    // Service images: no ".img", the service magic (CRIU's "stats-%s" is two files).
    public static let statsDump = ImageKind("stats-dump", .stats, StatsEntry.self)
    public static let statsRestore = ImageKind("stats-restore", .stats, StatsEntry.self)
    public static let irmapCache = ImageKind("irmap-cache", .irmapCache, IrmapCacheEntry.self)

    /// The catalogue. A name that two kinds could both read ("pages-3.img") belongs to the
    /// first listed.
    public static let all: [ImageKind] = [
        .inventory, .pstree, .core, .ids, .mm, .vmas, .pagemap, .pagemapShmem, .pages, .pagesOld,
        .shmemPagesOld, .sigacts, .itimers, .posixTimers, .creds, .fs, .rlimit, .signalShared,
        .signalPrivate, .seccomp, .apparmor, .cgroup, .cpuinfo,
        .fdinfo, .files, .regFiles, .extFiles, .nsFiles, .remapFpath, .ghostFile, .memfd, .pipes,
        .pipesData, .fifo, .fifoData, .eventfd, .eventpoll, .eventpollTfd, .signalfd, .timerfd,
        .inotify, .inotifyWd, .fanotify, .fanotifyMark, .tunfile, .fileLocks, .bpfmapFile,
        .bpfmapData, .mqueue,
        .tty, .ttyInfo, .ttyData,
        .unixsk, .inetsk, .packetsk, .netlinksk, .skQueues, .tcpStream,
        .utsns, .ipcnsVar, .ipcnsShm, .ipcnsMsg, .ipcnsSem, .userns, .timens, .pidns, .netns,
        .netdev, .ifaddr, .route, .route6, .rule, .iptables, .ip6tables, .nftables,
        .netnsConntrack, .netnsExpectations,
        .mountpoints, .tmpfs, .tmpfsDev, .autofs, .binfmtMiscOld, .binfmtMisc,
        .statsDump, .statsRestore, .irmapCache,
    ]
}
