/// The two-word header of a CRIU image (criu/include/magic.h). `inventory.img` carries
/// only its own magic; service images (stats) use the service magic instead of the common one.
/// Raw images (`pages-N.img`, ip dumps, tmpfs tarballs; magic 0) have no header and no `ImageMagic`.
public struct ImageMagic: Sendable, Equatable {
    public let header: [UInt32]

    static let common: UInt32 = 0x5456_4319
    static let service: UInt32 = 0x5510_5940

    init(_ magic: UInt32) { header = [ImageMagic.common, magic] }
    init(service magic: UInt32) { header = [ImageMagic.service, magic] }
    init(only magic: UInt32) { header = [magic] }

    /// The per-type magic (the last header word).
    public var magic: UInt32 { header[header.count - 1] }

    public static let inventory = ImageMagic(only: 0x5831_3116)
    public static let pstree = ImageMagic(0x5027_3030)
    public static let core = ImageMagic(0x5505_3847)
    public static let ids = ImageMagic(0x5443_2030)
    public static let mm = ImageMagic(0x5749_2820)
    public static let vmas = ImageMagic(0x5412_3737)
    /// Also `pagemap-shmem-N.img` (SHMEM_PAGEMAP_MAGIC is PAGEMAP_MAGIC).
    public static let pagemap = ImageMagic(0x5608_4025)
    public static let fdinfo = ImageMagic(0x5621_3732)
    public static let files = ImageMagic(0x5630_3138)
    public static let regFiles = ImageMagic(0x5036_3636)
    public static let extFiles = ImageMagic(0x5925_5641)
    public static let nsFiles = ImageMagic(0x6139_4011)
    public static let fs = ImageMagic(0x5140_3912)
    public static let creds = ImageMagic(0x5402_3547)
    public static let sigacts = ImageMagic(0x5534_4201)
    public static let itimers = ImageMagic(0x5746_4056)
    public static let posixTimers = ImageMagic(0x5260_3957)
    public static let rlimit = ImageMagic(0x5711_3925)
    /// `signal-s-N.img` and `signal-p-N.img` (PSIGNAL_MAGIC is SIGNAL_MAGIC).
    public static let signal = ImageMagic(0x5925_5647)
    public static let pipes = ImageMagic(0x5651_3555)
    public static let pipesData = ImageMagic(0x5645_3709)
    public static let fifo = ImageMagic(0x5836_4939)
    public static let fifoData = ImageMagic(0x5933_3054)
    public static let remapFpath = ImageMagic(0x5913_3954)
    public static let ghostFile = ImageMagic(0x5258_3605)
    public static let memfd = ImageMagic(0x4845_3499)
    public static let unixsk = ImageMagic(0x5437_3943)
    public static let inetsk = ImageMagic(0x5644_3851)
    public static let packetsk = ImageMagic(0x6045_4618)
    public static let netlinksk = ImageMagic(0x5800_5614)
    public static let skQueues = ImageMagic(0x5626_4026)
    public static let tcpStream = ImageMagic(0x5146_5506)
    public static let eventfd = ImageMagic(0x4452_3722)
    public static let eventpoll = ImageMagic(0x4502_3858)
    public static let eventpollTfd = ImageMagic(0x4443_3746)
    public static let signalfd = ImageMagic(0x5732_3820)
    public static let timerfd = ImageMagic(0x5049_3712)
    public static let inotify = ImageMagic(0x4842_4431)
    public static let inotifyWd = ImageMagic(0x5456_2009)
    public static let fanotify = ImageMagic(0x5509_6122)
    public static let fanotifyMark = ImageMagic(0x5650_6035)
    public static let tunfile = ImageMagic(0x5714_3751)
    public static let tty = ImageMagic(0x5943_3025)
    public static let ttyInfo = ImageMagic(0x5945_3036)
    public static let ttyData = ImageMagic(0x5941_3026)
    public static let fileLocks = ImageMagic(0x5432_3616)
    public static let bpfmapFile = ImageMagic(0x5750_6142)
    public static let bpfmapData = ImageMagic(0x6432_4033)
    public static let mountpoints = ImageMagic(0x5556_3928)
    public static let netdev = ImageMagic(0x5737_3951)
    public static let netns = ImageMagic(0x5593_3752)
    public static let utsns = ImageMagic(0x5447_3203)
    public static let ipcVar = ImageMagic(0x5311_5007)
    public static let ipcnsShm = ImageMagic(0x4628_3044)
    public static let ipcnsMsg = ImageMagic(0x5545_3737)
    public static let ipcnsSem = ImageMagic(0x5957_3019)
    public static let userns = ImageMagic(0x5547_4906)
    public static let timens = ImageMagic(0x4311_4433)
    public static let pidns = ImageMagic(0x6115_7326)
    public static let cgroup = ImageMagic(0x5938_3330)
    public static let seccomp = ImageMagic(0x6441_3049)
    public static let apparmor = ImageMagic(0x5942_3047)
    public static let cpuinfo = ImageMagic(0x6140_4013)
    /// Also the old per-namespace `binfmt-misc-N.img` (BINFMT_MISC_OLD_MAGIC is the same).
    public static let binfmtMisc = ImageMagic(0x6734_3323)
    public static let autofs = ImageMagic(0x4935_3943)
    /// Ours: POSIX message queues (CRIU has no such image).
    public static let mqueue = ImageMagic(0x5723_2104)
    /// `stats-dump` and `stats-restore`.
    public static let stats = ImageMagic(service: 0x5709_3306)
    public static let irmapCache = ImageMagic(service: 0x5700_4059)

    /// The magic of an image file name such as "core-123.img", "pipes-data.img",
    /// "ghost-file-1a.img" or "stats-dump"; nil for raw images ("pages-1.img",
    /// "tmpfs-dev-3.tar.gz.img", "route-9.img") and unknown names. Directories are ignored.
    public static func named(_ fileName: String) -> ImageMagic? {
        ImageName(fileName: fileName)?.kind.magic
    }
}
