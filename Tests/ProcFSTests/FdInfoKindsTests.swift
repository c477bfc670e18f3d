import Testing
@testable import ProcFS

/// fdinfo lines as Linux 6.18 prints them for anonymous-inode files.
@Suite struct FdInfoKindsTests {
    let head = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1044\n"

    @Test func eventfd() throws {
        let i = try FdInfo.parse(head + "eventfd-count:                7\neventfd-id: 6\neventfd-semaphore: 1\n")
        #expect(i.eventfdCount == 7)
        #expect(i.eventfdSemaphore)
        #expect(try FdInfo.parse(head + "eventfd-count: 100000007\n").eventfdCount == 0x1_0000_0007)
    }

    @Test func signalfdAndTimerfd() throws {
        #expect(try FdInfo.parse(head + "sigmask:\t0000000800000200\n").signalMask == 0x8_0000_0200)
        let t = try #require(try FdInfo.parse(head + "clockid: 1\nticks: 2\nsettime flags: 01\nit_value: (2, 999996070)\nit_interval: (1, 500)\n").timer)
        #expect(t.clockID == 1 && t.ticks == 2 && t.settimeFlags == 1)
        #expect(t.value == (2, 999_996_070) && t.interval == (1, 500))
    }

    @Test func epoll() throws {
        let i = try FdInfo.parse(head + "tfd:        3 events: 80000019 data:             1234  pos:0 ino:414 sdev:10\ntfd:        7 events:       19 data:               63  pos:5 ino:415 sdev:10\n")
        let t = try i.epollTargets
        #expect(t.count == 2)
        #expect(t[0] == FdInfo.EpollTarget(fd: 3, events: 0x8000_0019, data: 0x1234, pos: 0, ino: 0x414, sdev: 0x10))
        #expect(t[1].fd == 7 && t[1].data == 0x63 && t[1].pos == 5)
    }

    @Test func inotifyAndFanotify() throws {
        let i = try FdInfo.parse(head + "inotify wd:2 ino:124016 sdev:fe00000 mask:2 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:16401200bd8466cf\n")
        let w = try #require(try i.inotifyWatches.first)
        #expect(w.wd == 2 && w.ino == 0x124016 && w.sdev == 0xfe0_0000 && w.mask == 2 && w.handleType == 1)
        #expect(w.handle == [0x16, 0x40, 0x12, 0x00, 0xbd, 0x84, 0x66, 0xcf])
        let f = try FdInfo.parse(head + "fanotify flags:10 event-flags:8000\nfanotify mnt_id:1b mflags:0 mask:20 ignored_mask:0\nfanotify ino:3df9d sdev:fe00000 mflags:0 mask:28 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:9ddf030000000000\n")
        #expect(f.fanotifyFlags?.flags == 0x10 && f.fanotifyFlags?.eventFlags == 0x8000)
        let marks = try f.fanotifyMarks
        #expect(marks.count == 2)
        #expect(marks[0].mountID == 0x1b && marks[0].ino == nil && marks[0].mask == 0x20)
        #expect(marks[1].ino == 0x3df9d && marks[1].mask == 0x28 && marks[1].handle.count == 8)
    }

    @Test func pidfd() throws {
        #expect(try FdInfo.parse(head + "Pid:\t628\nNSpid:\t628\n").pidfdPid == 628)
        #expect(try FdInfo.parse(head + "Pid:\t-1\n").pidfdPid == -1)
    }
}
