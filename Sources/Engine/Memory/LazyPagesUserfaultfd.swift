import Foundation
import LinuxKernel
import Images

/// The userfaultfd(2) interface as lazy restore uses it (linux/userfaultfd.h, x86_64).
enum Userfaultfd {
    static let api: UInt64 = 0xAA
    /// fork, mremap, madvise(DONTNEED/REMOVE) and munmap are reported before the kernel
    /// goes on, so the pages still to come follow the memory they belong to.
    static let events: UInt64 = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 6)
    static let registerMissing: UInt64 = 1
    static let apiRequest: UInt64 = 0xC018_AA3F
    static let registerRequest: UInt64 = 0xC020_AA00
    static let copyRequest: UInt64 = 0xC028_AA03
    static let zeropageRequest: UInt64 = 0xC020_AA04
    static let wakeRequest: UInt64 = 0x8010_AA02
    static let messageSize = 32

    struct Api { var api: UInt64; var features: UInt64; var ioctls: UInt64 = 0 }
    struct Register { var start: UInt64; var length: UInt64; var mode: UInt64; var ioctls: UInt64 = 0 }
    struct Copy { var dst: UInt64; var src: UInt64; var length: UInt64; var mode: UInt64 = 0; var copied: Int64 = 0 }
    struct Zeropage { var start: UInt64; var length: UInt64; var mode: UInt64 = 0; var zeroed: Int64 = 0 }
    struct Range { var start: UInt64; var length: UInt64 }

    /// One uffd_msg: a fault at an address, or an event that changed the address space.
    enum Message {
        case fault(UInt64)
        case fork(Int32)
        case remap(from: UInt64, to: UInt64, length: UInt64)
        case removed(UInt64, UInt64)
        case other(UInt8)

        init(_ raw: UnsafeRawPointer) {
            func word(_ i: Int) -> UInt64 { raw.loadUnaligned(fromByteOffset: 8 + 8 * i, as: UInt64.self) }
            switch raw.load(as: UInt8.self) {
            case 0x12: self = .fault(word(1) & ~UInt64(SavedPages.page - 1))
            case 0x13: self = .fork(raw.loadUnaligned(fromByteOffset: 8, as: Int32.self))
            case 0x14: self = .remap(from: word(0), to: word(1), length: word(2))
            case 0x15, 0x16: self = .removed(word(0), word(1))
            case let e: self = .other(e)
            }
        }
    }

    /// The messages waiting on `fd` (non-blocking); empty when none.
    static func read(_ fd: Int32) throws -> [Message] {
        var buffer = [UInt8](repeating: 0, count: messageSize * 64)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EAGAIN || errno == EINTR { return [] }
            throw CheckpointError.errno("read userfaultfd \(fd)")
        }
        return buffer.withUnsafeBytes { b in
            stride(from: 0, to: n, by: messageSize).map { Message(b.baseAddress! + $0) }
        }
    }

    /// UFFDIO_COPY of `length` bytes at `data` to `address`: the bytes copied, or the errno
    /// when none were.
    static func copy(_ fd: Int32, to address: UInt64, from data: UnsafeRawPointer, length: Int) -> Result<Int, Errno> {
        var c = Copy(dst: address, src: UInt64(UInt(bitPattern: data)), length: UInt64(length))
        let r = ioctl(fd, UInt(copyRequest), &c)
        if c.copied > 0 { return .success(Int(c.copied)) }
        return .failure(Errno(rawValue: r < 0 ? errno : Int32(-c.copied)))
    }

    /// UFFDIO_ZEROPAGE of one page: what was never saved reads as zero.
    static func zeroPage(_ fd: Int32, at address: UInt64) -> Errno? {
        var z = Zeropage(start: address, length: UInt64(SavedPages.page))
        return ioctl(fd, UInt(zeropageRequest), &z) < 0 ? Errno(rawValue: errno) : nil
    }

    /// Wakes whoever waits on the page at `address` (it is there already, or gone).
    static func wake(_ fd: Int32, at address: UInt64) {
        var r = Range(start: address, length: UInt64(SavedPages.page))
        _ = ioctl(fd, UInt(wakeRequest), &r)
    }
}
