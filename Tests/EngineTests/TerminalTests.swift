import Foundation
import Testing
import Images
@testable import Engine

/// The tty layer on a real pty of our own: which side a device number is, and termios and
/// window size read back as they were set.
@Suite("terminal ioctls on a real pty")
struct TerminalTests {
    @Test("pty sides by device number")
    func kinds() {
        #expect(Terminal.ptyKind(rdev: 5 << 8 | 2)?.master == true)            // /dev/ptmx
        #expect(Terminal.ptyKind(rdev: 128 << 8 | 7)?.master == true)          // BSD-style master major
        #expect(Terminal.ptyKind(rdev: 136 << 8 | 3)?.slaveIndex == 3)
        #expect(Terminal.ptyKind(rdev: 137 << 8 | 4)?.slaveIndex == 260)
        #expect(Terminal.ptyKind(rdev: UInt64(136) << 8 | (UInt64(0x12300) << 12) | 0x45)?.slaveIndex == 0x12345)
        #expect(Terminal.ptyKind(rdev: 5 << 8 | 0) == nil)                     // /dev/tty
        #expect(Terminal.ptyKind(rdev: 4 << 8 | 1) == nil)                     // a vt
        #expect(Terminal.ptyKind(rdev: 1 << 8 | 3) == nil)                     // /dev/null
    }

    @Test("termios, locked termios and window size round-trip through the image entries")
    func roundTrip() throws {
        let fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        let master = Terminal(fd: fd, name: "test pty")
        try master.setInt("TIOCSPTLCK", Terminal.Request.tiocsptlck, 0)
        let slaveFd = try Int32(master.ioctl("TIOCGPTPEER", Terminal.Request.tiocgptpeer, Int(O_RDWR | O_NOCTTY | O_CLOEXEC)))
        defer { close(slaveFd) }
        let slave = Terminal(fd: slaveFd, name: "test pty slave")
        var t = try slave.termios()
        #expect(t.cCc.count == Terminal.controlChars)
        t.cLflag &= ~UInt32(ICANON | ECHO)
        // CRIU's packing: VINTR is the low byte of entry 0, VQUIT, VERASE, VKILL above it.
        #expect(t.cCc[0] & 0xff == 3 && t.cCc[0] >> 24 == 0x15, "c_cc[0] \(String(t.cCc[0], radix: 16))")
        t.cCc[0] = t.cCc[0] & ~0xff | 0x18
        try slave.setTermios(t)
        #expect(try slave.termios() == t)
        var w = WinsizeEntry(); w.wsRow = 37; w.wsCol = 111; w.wsXpixel = 555; w.wsYpixel = 777
        try master.setWinsize(w)
        #expect(try slave.winsize() == w)
        #expect(try master.index() == UInt32(String(try ProcTreeLink.of(slaveFd).dropFirst("/dev/pts/".count)))!)
        #expect(try master.flag("TIOCGPTLCK", Terminal.Request.tiocgptlck) == false)
        #expect(try slave.flag("TIOCGPKT", Terminal.Request.tiocgpkt) == false)  // a master-only request reads as 0
        _ = "abc".withCString { write(slaveFd, $0, 3) }
        // The kernel moves written bytes to the other side from a work queue.
        for _ in 0..<100 where try master.queued() < 3 { usleep(10_000) }
        #expect(try master.queued() == 3)
        #expect(try master.drain() == Data("abc".utf8))
        #expect(try master.queued() == 0)
    }
}

@Test("c_cc packs four control characters per entry, little-endian, as CRIU's memcpy does")
func controlCharPacking() {
    let cc = (1...19).map { UInt8($0) }
    let packed = Terminal.packControlChars(cc[...])
    #expect(packed.count == 19)
    #expect(packed[0] == 0x0403_0201 && packed[4] == 0x0013_1211 && packed[5...].allSatisfy { $0 == 0 })
    #expect(Terminal.unpackControlChars(packed) == cc)
    // Our images from before the packing: one character per entry.
    #expect(Terminal.unpackControlChars(cc.map { UInt32($0) }) == cc)
}

private enum ProcTreeLink {
    static func of(_ fd: Int32) throws -> String {
        try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")
    }
}
