import Foundation
import Images
import LinuxKernel
import Testing

@Suite("Image catalogue")
struct ImageCatalogueTests {
    /// imgset_template of criu/image-desc.c (CRIU 3.17), each `fmt` as CRIU opens it.
    static let criuTemplates: Set<String> = [
        "inventory.img", "fdinfo-%u.img", "pagemap-%lu.img", "pagemap-shmem-%lu.img", "reg-files.img",
        "ext-files.img", "ns-files.img", "eventfd.img", "eventpoll.img", "eventpoll-tfd.img", "signalfd.img",
        "inotify.img", "inotify-wd.img", "fanotify.img", "fanotify-mark.img", "core-%u.img", "ids-%u.img",
        "mm-%u.img", "vmas-%u.img", "pipes.img", "pipes-data.img", "fifo.img", "fifo-data.img", "pstree.img",
        "sigacts-%u.img", "unixsk.img", "inetsk.img", "packetsk.img", "netlinksk.img", "sk-queues.img",
        "itimers-%u.img", "posix-timers-%u.img", "creds-%u.img", "utsns-%u.img", "ipcns-var-%u.img",
        "ipcns-shm-%u.img", "ipcns-msg-%u.img", "ipcns-sem-%u.img", "fs-%u.img", "remap-fpath.img",
        "ghost-file-%x.img", "memfd.img", "tcp-stream-%x.img", "mountpoints-%u.img", "netdev-%u.img",
        "netns-%u.img", "ifaddr-%u.img", "route-%u.img", "route6-%u.img", "rule-%u.img", "iptables-%u.img",
        "ip6tables-%u.img", "nftables-%u.img", "tmpfs-%u.tar.gz.img", "tmpfs-dev-%u.tar.gz.img",
        "autofs-%u.img", "binfmt-misc-%u.img", "binfmt-misc.img", "tty.img", "tty-info.img", "tty-data.img",
        "filelocks.img", "rlimit-%u.img", "pages-%u.img", "pages-%d.img", "pages-shmem-%ld.img",
        "signal-s-%u.img", "signal-p-%u.img", "tunfile.img", "cgroup.img", "timerfd.img", "cpuinfo.img",
        "seccomp.img", "userns-%u.img", "netns-ct-%u.img", "netns-exp-%u.img", "files.img", "timens-%u.img",
        "pidns-%u.img", "bpfmap-file.img", "bpfmap-data.img", "apparmor.img", "stats-%s", "irmap-cache",
    ]

    /// Images without a header (RAW_IMAGE_MAGIC in criu/include/magic.h).
    static let raw: Set<ImageKind> = [
        .pages, .pagesOld, .shmemPagesOld, .ifaddr, .route, .route6, .rule, .iptables, .ip6tables,
        .nftables, .netnsConntrack, .netnsExpectations, .tmpfs, .tmpfsDev,
    ]

    @Test("every kind is spelled as CRIU's imgset_template spells it")
    func templates() {
        var ours = Set(ImageKind.all.map(\.template))
        #expect(ours.count == ImageKind.all.count, "a template is listed twice")
        // CRIU's one "stats-%s" is our two service images; mqueue.img is ours alone.
        #expect(ours.remove("stats-dump") != nil && ours.remove("stats-restore") != nil)
        #expect(ours.remove("mqueue.img") != nil)
        ours.insert("stats-%s")
        #expect(ours.subtracting(Self.criuTemplates).isEmpty, "not CRIU's: \(ours.subtracting(Self.criuTemplates).sorted())")
        #expect(Self.criuTemplates.subtracting(ours).isEmpty, "missing: \(Self.criuTemplates.subtracting(ours).sorted())")
    }

    @Test("raw kinds have no magic and no message; every other kind has both")
    func rawKinds() {
        for kind in ImageKind.all {
            if Self.raw.contains(kind) {
                #expect(kind.magic == nil && kind.message == nil, "\(kind)")
            } else {
                #expect(kind.magic != nil && kind.message != nil, "\(kind)")
            }
        }
    }

    @Test("every kind's names parse back to the kind, its id and its magic", arguments: ImageKind.all)
    func roundTrip(kind: ImageKind) throws {
        let names = kind.hasID ? [0, 1, 7, 10, 4242, 0x7fff_ffff, 0xdead_beef].map { ImageName(kind, UInt64($0)) } : [ImageName(kind)]
        for name in names {
            let parsed = try #require(ImageName(fileName: name.fileName), "\(name.fileName) does not parse")
            // pages-%d.img is the old spelling of pages-%u.img: the same names, read as pages.
            #expect(parsed == name || (kind == .pagesOld && parsed == ImageName(.pages, name.id!)), "\(name.fileName) parses as \(parsed.kind)")
            #expect(ImageMagic.named(name.fileName) == kind.magic)
            #expect(ImageName(fileName: "/some/images/dir/" + name.fileName) == parsed)
        }
    }

    @Test("per-object names", arguments: [
        (ImageName.core(123), "core-123.img"), (.core(Int32(1)), "core-1.img"), (.pagemap(4242), "pagemap-4242.img"),
        (.pagemapShmem(UInt64(12345)), "pagemap-shmem-12345.img"), (.pages(UInt32(3)), "pages-3.img"),
        (.ghostFile(UInt32(0x1a)), "ghost-file-1a.img"), (.tcpStream(UInt32(0x4f2a)), "tcp-stream-4f2a.img"),
        (.fdinfo(2), "fdinfo-2.img"), (.ipcnsVar(12), "ipcns-var-12.img"), (.mountpoints(13), "mountpoints-13.img"),
        (.tmpfsDev(UInt32(254 << 20 | 3)), "tmpfs-dev-266338307.tar.gz.img"), (.tmpfs(77), "tmpfs-77.tar.gz.img"),
        (.signalShared(9), "signal-s-9.img"), (.signalPrivate(9), "signal-p-9.img"),
        (.inventory, "inventory.img"), (.files, "files.img"), (.statsDump, "stats-dump"),
        (.statsRestore, "stats-restore"), (.irmapCache, "irmap-cache"),
    ])
    func names(image: ImageName, fileName: String) {
        #expect(image.fileName == fileName)
        #expect("\(image)" == fileName)
        #expect(ImageName(fileName: fileName) == image)
    }

    @Test("other files are not images", arguments: [
        "descriptors.json", "dump.log", "core.img.bak", "core-xyz.img", "core-.img", "core--1.img",
        "core-1a.img", "ghost-file-xyz.img", "tmpfs-dev-3.tar.gz", "inventory", "stats-dump.img", "",
        "pstree-3.img", "config.dump",
    ])
    func notImages(fileName: String) {
        #expect(ImageName(fileName: fileName) == nil)
    }

    @Test("an image directory writes and reads by name, with the kind's magic")
    func directory() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let images = ImageDirectory(path: dir.path)
        #expect(!images.exists(.pstree))
        try images.write(.pstree, Fixtures.pstree())
        try images.write(.mountpoints(5), [MntEntry]())
        try images.write(.mountpoints(3), [MntEntry]())
        #expect(images.exists(.pstree))
        #expect(images.file(.pstree) == dir.appendingPathComponent("pstree.img").path)
        #expect(try images.read(.pstree, as: PstreeEntry.self) == Fixtures.pstree())
        var r = try ImageReader(path: dir.appendingPathComponent("pstree.img").path, magic: .pstree)
        #expect(try r.all(PstreeEntry.self).count == 2)
        #expect(images.list(.mountpoints) == [.mountpoints(3), .mountpoints(5)])
        #expect(images.list(.core).isEmpty)

        let missing = #expect(throws: CheckpointError.self) { try images.read(.files, as: FileEntry.self) }
        #expect(missing?.message == "image \(images.file(.files)): missing")
        let raw = #expect(throws: CheckpointError.self) { try images.writer(.pages(1)) }
        #expect(raw?.message.contains("raw image") == true)
    }
}
