import Images
import Testing

@Suite("ImageMagic")
struct ImageMagicTests {
    @Test("header words", arguments: [
        (ImageMagic.inventory, [UInt32(0x5831_3116)]),
        (ImageMagic.pstree, [0x5456_4319, 0x5027_3030]),
        (ImageMagic.core, [0x5456_4319, 0x5505_3847]),
        (ImageMagic.pipesData, [0x5456_4319, 0x5645_3709]),
        (ImageMagic.stats, [0x5510_5940, 0x5709_3306]),
        (ImageMagic.irmapCache, [0x5510_5940, 0x5700_4059]),
    ])
    func headers(magic: ImageMagic, header: [UInt32]) {
        #expect(magic.header == header)
        #expect(magic.magic == header.last)
    }

    @Test("file names map to magics", arguments: [
        ("inventory.img", ImageMagic.inventory), ("pstree.img", .pstree), ("core-123.img", .core),
        ("ids-1.img", .ids), ("mm-77.img", .mm), ("pagemap-1.img", .pagemap),
        ("pagemap-shmem-12345.img", .pagemap), ("fdinfo-2.img", .fdinfo), ("files.img", .files),
        ("reg-files.img", .regFiles), ("fs-9.img", .fs), ("creds-9.img", .creds),
        ("sigacts-9.img", .sigacts), ("itimers-9.img", .itimers), ("posix-timers-9.img", .posixTimers),
        ("rlimit-9.img", .rlimit), ("signal-s-9.img", .signal), ("signal-p-9.img", .signal),
        ("pipes.img", .pipes), ("pipes-data.img", .pipesData), ("fifo.img", .fifo),
        ("fifo-data.img", .fifoData), ("remap-fpath.img", .remapFpath),
        ("ghost-file-1a.img", .ghostFile), ("tcp-stream-4f2a.img", .tcpStream),
        ("mountpoints-13.img", .mountpoints), ("netns-10.img", .netns), ("netdev-10.img", .netdev),
        ("utsns-11.img", .utsns), ("ipcns-var-12.img", .ipcVar), ("ipcns-shm-12.img", .ipcnsShm),
        ("userns-14.img", .userns), ("timens-15.img", .timens), ("pidns-16.img", .pidns),
        ("cgroup.img", .cgroup), ("tty.img", .tty), ("tty-info.img", .ttyInfo),
        ("tty-data.img", .ttyData), ("seccomp.img", .seccomp), ("memfd.img", .memfd),
        ("eventpoll-tfd.img", .eventpollTfd), ("inotify-wd.img", .inotifyWd),
        ("binfmt-misc-3.img", .binfmtMisc), ("stats-dump", .stats), ("stats-restore", .stats),
        ("irmap-cache", .irmapCache), ("/some/dir/core-5.img", .core),
    ])
    func named(file: String, magic: ImageMagic) {
        #expect(ImageMagic.named(file) == magic)
    }

    @Test("raw and unknown images have no magic", arguments: [
        "pages-1.img", "tmpfs-dev-3.tar.gz", "tmpfs-7.tar.gz", "tmpfs-dev-3.tar.gz.img", "route-9.img",
        "ifaddr-9.img", "iptables-9.img", "netns-ct-9.img", "descriptors.json", "core.img.bak",
        "core-xyz.img", "", "dump.log",
    ])
    func raw(file: String) {
        #expect(ImageMagic.named(file) == nil)
    }
}
