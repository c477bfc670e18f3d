import Foundation
import Images
import Testing

/// files.img entries of the fd kinds beyond files and pipes, as the dump writes them
/// (everything inline in files.img, as CRIU 3.x+ does). pidfd (fd type 20) is left out:
/// Debian's crit 3.17 predates it.
extension CritCases {
    static let fdKinds: [CritCase] = [
        CritCase(file: "files.img", magic: .files, critName: "FILES",
                 write: { w in for f in fdKindFiles() { try w.append(f) } },
                 check: { e in
                     #expect(e.map { $0.string("type") } == ["EVENTFD", "SIGNALFD", "TIMERFD", "EVENTPOLL", "INOTIFY", "FANOTIFY", "MEMFD"])
                     #expect(e[0].int("efd.counter") == 0x1_0000_0007)
                     #expect(e[1].int("sgfd.sigmask") == 0x8_0000_0200)
                     #expect(e[2].int("tfd.clockid") == 7)
                     #expect(e[2].int("tfd.isec") == 1)
                     #expect(e[2].int("tfd.ticks") == 3)
                     #expect(e[3].count("epfd.tfd") == 2)
                     #expect(e[3].int("epfd.tfd.1.data") == 0x2222)
                     #expect(e[4].int("ify.wd.0.wd") == 3)
                     #expect(e[4].string("ify.wd.0.f_handle.path") == "/tmp/watched")
                     #expect(e[5].string("ffy.mark.0.type") == "INODE")
                     #expect(e[5].string("ffy.mark.1.me.path") == "/")
                     #expect(e[6].int("memfd.inode_id") == 1)
                 }),
    ]

    static func fdKindFiles() -> [FileEntry] {
        func file(_ id: UInt32, _ type: FdTypes, _ fill: (inout FileEntry) -> Void) -> FileEntry {
            var f = FileEntry(); f.id = id; f.type = type; fill(&f); return f
        }
        var fh = FhEntry(); fh.bytes = 8; fh.type = 1; fh.handle = [UInt64](repeating: 0, count: 15) + [0x1234]; fh.path = "/tmp/watched"
        return [
            file(1, .eventfd) { var e = EventfdFileEntry(); e.id = 1; e.flags = 0o4001; e.fown = Fixtures.fown(); e.counter = 0x1_0000_0007; $0.efd = e },
            file(2, .signalfd) { var s = SignalfdEntry(); s.id = 2; s.flags = 0o2; s.fown = Fixtures.fown(); s.sigmask = 0x8_0000_0200; $0.sgfd = s },
            file(3, .timerfd) {
                var t = TimerfdEntry(); t.id = 3; t.flags = 0o2; t.fown = Fixtures.fown(); t.clockid = 7; t.ticks = 3
                t.settimeFlags = 1; t.vsec = 2; t.vnsec = 5; t.isec = 1; t.insec = 0; $0.tfd = t
            },
            file(4, .eventpoll) {
                var e = EventpollFileEntry(); e.id = 4; e.flags = 0o2; e.fown = Fixtures.fown()
                for (fd, data) in [(UInt32(1), UInt64(0x1111)), (5, 0x2222)] {
                    var t = EventpollTfdEntry(); t.id = 4; t.tfd = fd; t.events = 0x19; t.data = data; t.dev = 0x10; t.inode = 1044; t.pos = 0
                    e.tfd.append(t)
                }
                $0.epfd = e
            },
            file(5, .inotify) {
                var w = InotifyWdEntry(); w.id = 5; w.iIno = 0x3df9d; w.mask = 0x300; w.ignoredMask = 0; w.sDev = 0xfe0_0000; w.wd = 3; w.fHandle = fh
                var i = InotifyFileEntry(); i.id = 5; i.flags = 0o4000; i.fown = Fixtures.fown(); i.wd = [w]; $0.ify = i
            },
            file(6, .fanotify) {
                var ie = FanotifyInodeMarkEntry(); ie.iIno = 0x3df9d; ie.fHandle = fh
                var m1 = FanotifyMarkEntry(); m1.id = 6; m1.type = .inode; m1.mflags = 0; m1.mask = 0x28; m1.ignoredMask = 0; m1.sDev = 0xfe0_0000; m1.ie = ie
                var me = FanotifyMountMarkEntry(); me.mntID = 0x1b; me.path = "/"
                var m2 = FanotifyMarkEntry(); m2.id = 6; m2.type = .mount; m2.mflags = 0; m2.mask = 0x20; m2.ignoredMask = 0; m2.sDev = 0; m2.me = me
                var f = FanotifyFileEntry(); f.id = 6; f.flags = 0o2; f.fown = Fixtures.fown(); f.faflags = 0; f.evflags = 0x8000; f.mark = [m1, m2]
                $0.ffy = f
            },
            file(7, .memfd) { var m = MemfdFileEntry(); m.id = 7; m.flags = 0o100002; m.pos = 1234; m.fown = Fixtures.fown(); m.inodeID = 1; $0.memfd = m },
        ]
    }
}
