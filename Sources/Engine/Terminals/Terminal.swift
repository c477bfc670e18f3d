import Foundation
import LinuxKernel
import CShim
import Images

/// One of our descriptors on a terminal, and the tty ioctls the dump and the restore use
/// (raw syscalls: every failure names the terminal and keeps its errno).
struct Terminal {
    let fd: Int32
    /// For messages: "/dev/pts/3 (pid 812 fd 0)", "the new pty 4", ...
    let name: String

    enum Request {
        static let tcgets: UInt = 0x5401, tcsets: UInt = 0x5402, tiocexcl: UInt = 0x540C
        static let tiocsctty: UInt = 0x540E, tiocspgrp: UInt = 0x5410
        static let tiocgwinsz: UInt = 0x5413, tiocswinsz: UInt = 0x5414, fionread: UInt = 0x541B
        static let tiocpkt: UInt = 0x5420, tiocgptn: UInt = 0x8004_5430, tiocsptlck: UInt = 0x4004_5431
        static let tiocgpkt: UInt = 0x8004_5438, tiocgptlck: UInt = 0x8004_5439, tiocgexcl: UInt = 0x8004_5440
        static let tiocgdev: UInt = 0x8004_5432
        static let tiocgptpeer: UInt = 0x5441, tiocglcktrmios: UInt = 0x5456, tiocslcktrmios: UInt = 0x5457
    }

    /// The kernel's struct termios: four flag words, c_line, 19 control characters.
    static let termiosSize = 36, controlChars = 19

    /// termios_entry.c_cc as CRIU writes it: tty.c memcpy()s glibc's 32-byte c_cc (the
    /// kernel's 19, zero-filled) over the uint32 array, so entries 0-7 hold four
    /// characters each, little-endian; CRIU wants 19 entries (TERMIOS_NCC) and reads back
    /// only the first 8. The rest are zero here (CRIU leaves them uninitialized).
    static func packControlChars(_ cc: ArraySlice<UInt8>) -> [UInt32] {
        let bytes = Array(cc.prefix(32)) + [UInt8](repeating: 0, count: max(0, 32 - cc.count))
        let packed = (0..<8).map { i in (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[i * 4 + $1]) << (8 * $1) } }
        return packed + [UInt32](repeating: 0, count: controlChars - 8)
    }

    /// Also reads our images from before CRIU's packing (one character per entry): no
    /// entry above 0xff, which packed would need VQUIT, VERASE, VKILL, VMIN, VSTOP... all 0.
    static func unpackControlChars(_ entries: [UInt32]) -> [UInt8] {
        if entries.count == controlChars, entries.allSatisfy({ $0 <= 0xff }) {
            return entries.map { UInt8($0) }
        }
        let bytes = entries.prefix(8).flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        return Array(bytes.prefix(controlChars))
    }

    /// Unix98 pty majors: masters 128-135 (and /dev/ptmx, 5:2), slaves 136-143.
    static func ptyKind(rdev: UInt64) -> (master: Bool, slaveIndex: UInt32?)? {
        let major = UInt32(truncatingIfNeeded: (rdev >> 8) & 0xfff | (rdev >> 32) & 0xffff_f000)
        let minor = UInt32(truncatingIfNeeded: rdev & 0xff | (rdev >> 12) & 0xfff0_0)
        if major == 5 && minor == 2 || (128...135).contains(major) { return (true, nil) }
        if (136...143).contains(major) { return (false, (major - 136) * 256 + minor) }
        return nil
    }

    @discardableResult
    func ioctl(_ what: String, _ request: UInt, _ arg: Int = 0) throws -> Int {
        try Syscall.raw("\(what) on \(name)", SyscallNumber.ioctl, Int(fd), Int(bitPattern: request), arg)
    }

    private func ioctl(_ what: String, _ request: UInt, buffer count: Int) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        try buf.withUnsafeMutableBytes { _ = try ioctl(what, request, Int(bitPattern: $0.baseAddress)) }
        return buf
    }

    private func ioctl(_ what: String, _ request: UInt, bytes: [UInt8]) throws {
        var buf = bytes
        try buf.withUnsafeMutableBytes { _ = try ioctl(what, request, Int(bitPattern: $0.baseAddress)) }
    }

    /// An int-valued query; ENOTTY (the request is not for this side of the pty) reads as 0.
    func flag(_ what: String, _ request: UInt) throws -> Bool {
        var v: Int32 = 0
        let r = withUnsafeMutablePointer(to: &v) { Syscall.result(SyscallNumber.ioctl, Int(fd), Int(bitPattern: request), Int(bitPattern: $0)) }
        if r == .failure(.ENOTTY) || r == .failure(.EINVAL) { return false }
        _ = try r.get("\(what) on \(name)")
        return v != 0
    }

    func setInt(_ what: String, _ request: UInt, _ value: Int32) throws {
        var v = value
        try withUnsafeMutablePointer(to: &v) { _ = try ioctl(what, request, Int(bitPattern: $0)) }
    }

    /// A new description of this master's slave (TIOCGPTPEER), close-on-exec in this
    /// process. Unlike open(2), the ioctl keeps O_CLOEXEC in the file's f_flags, where the
    /// restored task's fdinfo would show it: it is asked for without and set on our fd after.
    func openPeer(flags: Int32) throws -> Int32 {
        let fd = Int32(try ioctl("TIOCGPTPEER", Request.tiocgptpeer, Int(flags & ~(O_CLOEXEC | O_CREAT | O_EXCL | O_TRUNC) | O_NOCTTY)))
        if fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 {
            close(fd)
            throw CheckpointError.errno("set FD_CLOEXEC on the slave of \(name)")
        }
        return fd
    }

    func index() throws -> UInt32 {
        var v: UInt32 = 0
        try withUnsafeMutablePointer(to: &v) { _ = try ioctl("TIOCGPTN", Request.tiocgptn, Int(bitPattern: $0)) }
        return v
    }

    func termios(locked: Bool = false) throws -> TermiosEntry {
        let b = try ioctl(locked ? "TIOCGLCKTRMIOS" : "TCGETS", locked ? Request.tiocglcktrmios : Request.tcgets, buffer: Self.termiosSize)
        var t = TermiosEntry()
        let words = b.withUnsafeBytes { p in (0..<4).map { p.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self) } }
        t.cIflag = words[0]; t.cOflag = words[1]; t.cCflag = words[2]; t.cLflag = words[3]
        t.cLine = UInt32(b[16])
        t.cCc = Self.packControlChars(b[17..<(17 + Self.controlChars)])
        t.cIspeed = 0; t.cOspeed = 0
        return t
    }

    func setTermios(_ t: TermiosEntry, locked: Bool = false) throws {
        guard t.cCc.count >= Self.controlChars else {
            throw CheckpointError(.image, "termios of \(name) has \(t.cCc.count) control characters, want \(Self.controlChars)")
        }
        var b = [t.cIflag, t.cOflag, t.cCflag, t.cLflag].flatMap { v in withUnsafeBytes(of: v) { Array($0) } }
        b.append(UInt8(truncatingIfNeeded: t.cLine))
        b += Self.unpackControlChars(t.cCc)
        try ioctl(locked ? "TIOCSLCKTRMIOS" : "TCSETS", locked ? Request.tiocslcktrmios : Request.tcsets, bytes: b)
    }

    func winsize() throws -> WinsizeEntry {
        let b = try ioctl("TIOCGWINSZ", Request.tiocgwinsz, buffer: 8)
        let v = b.withUnsafeBytes { p in (0..<4).map { UInt32(p.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) } }
        var w = WinsizeEntry()
        w.wsRow = v[0]; w.wsCol = v[1]; w.wsXpixel = v[2]; w.wsYpixel = v[3]
        return w
    }

    func setWinsize(_ w: WinsizeEntry) throws {
        let b = [w.wsRow, w.wsCol, w.wsXpixel, w.wsYpixel].flatMap { v in withUnsafeBytes(of: UInt16(truncatingIfNeeded: v)) { Array($0) } }
        try ioctl("TIOCSWINSZ", Request.tiocswinsz, bytes: b)
    }

    /// Bytes waiting to be read on this side.
    func queued() throws -> Int {
        var v: Int32 = 0
        try withUnsafeMutablePointer(to: &v) { _ = try ioctl("FIONREAD", Request.fionread, Int(bitPattern: $0)) }
        return Int(v)
    }

    /// Reads what is queued without waiting: O_NONBLOCK is set on the (shared) description
    /// only for the read and put back after. A master in packet mode starts every read with
    /// a status byte: 0 before data (dropped here), or alone for a status change (skipped).
    func drain(packetMode: Bool = false) throws -> Data {
        guard try queued() > 0 else { return Data() }
        let flags = fcntl(fd, F_GETFL)
        if flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 { throw CheckpointError.errno("set O_NONBLOCK on \(name)") }
        defer { _ = fcntl(fd, F_SETFL, flags) }
        var out = Data()
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            switch Syscall.valueOrErrno({ read(fd, &buf, buf.count) }) {
            case .success(let n) where n > 0:
                if !packetMode { out.append(contentsOf: buf[0..<n]) } else if buf[0] == 0 { out.append(contentsOf: buf[1..<n]) }
            case .success, .failure(.EAGAIN): return out
            case .failure(let err): throw CheckpointError.errno("read queued data of \(name)", err)
            }
        }
    }

    func write(_ data: Data) throws {
        var off = 0
        while off < data.count {
            let n = try Syscall.retrying("write \(data.count) queued bytes to \(name)") {
                data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, data.count - off) }
            }
            if n == 0 { throw CheckpointError.errno("write \(data.count) queued bytes to \(name)", .EIO) }
            off += n
        }
    }
}
