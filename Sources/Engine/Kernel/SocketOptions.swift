import Foundation
import Images

/// The SOL_SOCKET options CRIU keeps in sk_opts_entry, read from a socket at dump and
/// set on the new one at restore (any family).
extension SkOptsEntry {
    static let optPasssec: Int32 = 34, optMark: Int32 = 36, optSndbufForce: Int32 = 32, optRcvbufForce: Int32 = 33

    public static func read(_ fd: Int32, what: String) throws -> SkOptsEntry {
        func int(_ opt: Int32, _ name: String) throws -> Int32 {
            var v: Int32 = 0
            var len = socklen_t(4)
            if getsockopt(fd, SOL_SOCKET, opt, &v, &len) != 0 { throw CheckpointError.errno("getsockopt(\(name)) of \(what)") }
            return v
        }
        func time(_ opt: Int32, _ name: String) throws -> Glibc.timeval {
            var tv = Glibc.timeval()
            var len = socklen_t(MemoryLayout<Glibc.timeval>.size)
            if getsockopt(fd, SOL_SOCKET, opt, &tv, &len) != 0 { throw CheckpointError.errno("getsockopt(\(name)) of \(what)") }
            return tv
        }
        var o = SkOptsEntry()
        o.soSndbuf = UInt32(bitPattern: try int(SO_SNDBUF, "SO_SNDBUF"))
        o.soRcvbuf = UInt32(bitPattern: try int(SO_RCVBUF, "SO_RCVBUF"))
        let snd = try time(SO_SNDTIMEO, "SO_SNDTIMEO"), rcv = try time(SO_RCVTIMEO, "SO_RCVTIMEO")
        o.soSndTmoSec = UInt64(snd.tv_sec); o.soSndTmoUsec = UInt64(snd.tv_usec)
        o.soRcvTmoSec = UInt64(rcv.tv_sec); o.soRcvTmoUsec = UInt64(rcv.tv_usec)
        o.soPriority = UInt32(bitPattern: try int(SO_PRIORITY, "SO_PRIORITY"))
        o.soRcvlowat = UInt32(bitPattern: try int(SO_RCVLOWAT, "SO_RCVLOWAT"))
        o.soMark = UInt32(bitPattern: try int(Self.optMark, "SO_MARK"))
        o.soPasscred = try int(SO_PASSCRED, "SO_PASSCRED") != 0
        o.soPasssec = try int(Self.optPasssec, "SO_PASSSEC") != 0
        return o
    }

    /// Sets the options on `fd`. Buffer sizes go through the *FORCE variants (the kernel
    /// doubles what is set, and reported the doubled value at dump).
    public func apply(to fd: Int32, what: String) throws {
        func set(_ opt: Int32, _ value: Int32, _ name: String) throws {
            var v = value
            if setsockopt(fd, SOL_SOCKET, opt, &v, 4) != 0 { throw CheckpointError.errno("setsockopt(\(name)) of \(what)") }
        }
        func setTime(_ opt: Int32, _ sec: UInt64, _ usec: UInt64, _ name: String) throws {
            guard sec != 0 || usec != 0 else { return }
            var tv = Glibc.timeval(tv_sec: Int(sec), tv_usec: Int(usec))
            if setsockopt(fd, SOL_SOCKET, opt, &tv, socklen_t(MemoryLayout<Glibc.timeval>.size)) != 0 { throw CheckpointError.errno("setsockopt(\(name)) of \(what)") }
        }
        try set(Self.optSndbufForce, Int32(bitPattern: soSndbuf / 2), "SO_SNDBUFFORCE")
        try set(Self.optRcvbufForce, Int32(bitPattern: soRcvbuf / 2), "SO_RCVBUFFORCE")
        try setTime(SO_SNDTIMEO, soSndTmoSec, soSndTmoUsec, "SO_SNDTIMEO")
        try setTime(SO_RCVTIMEO, soRcvTmoSec, soRcvTmoUsec, "SO_RCVTIMEO")
        if soPriority != 0 { try set(SO_PRIORITY, Int32(bitPattern: soPriority), "SO_PRIORITY") }
        if soRcvlowat > 1 { try set(SO_RCVLOWAT, Int32(bitPattern: soRcvlowat), "SO_RCVLOWAT") }
        if soMark != 0 { try set(Self.optMark, Int32(bitPattern: soMark), "SO_MARK") }
        if soPasscred { try set(SO_PASSCRED, 1, "SO_PASSCRED") }
        if soPasssec { try set(Self.optPasssec, 1, "SO_PASSSEC") }
    }
}
