import Foundation
import LinuxKernel
import Images

/// The generic socket options of sk_opts_entry, read from a live socket and set again on
/// a new one, as CRIU's dump_socket_opts/restore_socket_opts carry them.
extension SkOptsEntry {
    typealias O = SocketOption

    /// The options a UNIX socket keeps in its image.
    static func read(_ s: SocketOption) throws -> SkOptsEntry {
        var e = SkOptsEntry()
        e.soSndbuf = UInt32(bitPattern: try s.int(O.solSocket, O.soSndbuf, "SO_SNDBUF"))
        e.soRcvbuf = UInt32(bitPattern: try s.int(O.solSocket, O.soRcvbuf, "SO_RCVBUF"))
        let snd = try timeval(s, O.soSndtimeo, "SO_SNDTIMEO"), rcv = try timeval(s, O.soRcvtimeo, "SO_RCVTIMEO")
        e.soSndTmoSec = snd.0; e.soSndTmoUsec = snd.1
        e.soRcvTmoSec = rcv.0; e.soRcvTmoUsec = rcv.1
        e.soPriority = UInt32(bitPattern: try s.int(O.solSocket, O.soPriority, "SO_PRIORITY"))
        e.soRcvlowat = UInt32(bitPattern: try s.int(O.solSocket, O.soRcvlowat, "SO_RCVLOWAT"))
        e.soMark = UInt32(bitPattern: try s.int(O.solSocket, O.soMark, "SO_MARK"))
        // Newer kernels keep these for unix and netlink sockets only.
        if let v = try s.optionalInt(O.solSocket, O.soPasscred, "SO_PASSCRED") { e.soPasscred = v != 0 }
        if let v = try s.optionalInt(O.solSocket, O.soPasssec, "SO_PASSSEC") { e.soPasssec = v != 0 }
        return e
    }

    /// The options a TCP or UDP socket keeps: those of read(_:) and the rest of
    /// sk_opts_entry.
    static func read(_ s: SocketOption, tcp: Bool) throws -> SkOptsEntry {
        var e = try read(s)
        e.reuseaddr = try s.bool(O.solSocket, O.soReuseaddr, "SO_REUSEADDR")
        e.soReuseport = try s.bool(O.solSocket, O.soReuseport, "SO_REUSEPORT")
        e.soDontroute = try s.bool(O.solSocket, O.soDontroute, "SO_DONTROUTE")
        if let v = try s.optionalInt(O.solSocket, O.soNoCheck, "SO_NO_CHECK") { e.soNoCheck = v != 0 }
        e.soBroadcast = try s.bool(O.solSocket, O.soBroadcast, "SO_BROADCAST")
        e.soOobinline = UInt32(try s.int(O.solSocket, O.soOobinline, "SO_OOBINLINE") != 0 ? 1 : 0)
        if let v = try s.optionalInt(O.solSocket, O.soBufLock, "SO_BUF_LOCK") { e.soBufLock = UInt32(bitPattern: v) }
        let linger = try s.bytes(O.solSocket, O.soLinger, 8, "SO_LINGER")
        if linger.count == 8, linger.withUnsafeBytes({ $0.loadUnaligned(as: Int32.self) }) != 0 {
            e.soLinger = linger.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) }
        }
        let dev = try s.bytes(O.solSocket, O.soBindtodevice, 16, "SO_BINDTODEVICE")
        if let name = String(bytes: dev.prefix { $0 != 0 }, encoding: .utf8), !name.isEmpty { e.soBoundDev = name }
        e.soKeepalive = try s.bool(O.solSocket, O.soKeepalive, "SO_KEEPALIVE")
        if tcp {
            e.tcpKeepcnt = UInt32(bitPattern: try s.int(O.solTCP, O.tcpKeepcnt, "TCP_KEEPCNT"))
            e.tcpKeepidle = UInt32(bitPattern: try s.int(O.solTCP, O.tcpKeepidle, "TCP_KEEPIDLE"))
            e.tcpKeepintvl = UInt32(bitPattern: try s.int(O.solTCP, O.tcpKeepintvl, "TCP_KEEPINTVL"))
        }
        e.soFilter = try filter(s)
        // Ours (sk_opts_entry field 101): set after the filter is attached again.
        if try s.bool(O.solSocket, soLockFilterOption, "SO_LOCK_FILTER") { e.soLockFilter = true }
        return e
    }

    static let soLockFilterOption: Int32 = 44

    /// A classic BPF filter (SO_ATTACH_FILTER) as SO_GET_FILTER returns it: one sock_filter
    /// (code, jt, jf, k) per fixed64, as CRIU writes so_filter. An eBPF program
    /// (SO_ATTACH_BPF) reads back as nothing classic: refused.
    private static func filter(_ s: SocketOption) throws -> [UInt64] {
        var count = socklen_t(0)
        guard getsockopt(s.fd, O.solSocket, O.soGetFilter, nil, &count) == 0, count > 0 else { return [] }
        var insns = [UInt64](repeating: 0, count: Int(count))
        var len = count
        if getsockopt(s.fd, O.solSocket, O.soGetFilter, &insns, &len) != 0 {
            throw CheckpointError.errno("\(s.owner): getsockopt SO_GET_FILTER (an eBPF program cannot be read back)")
        }
        return Array(insns.prefix(Int(len)))
    }

    /// SO_ATTACH_FILTER with the dumped program (struct sock_fprog: length, pointer).
    private func attachFilter(_ s: SocketOption) throws {
        var insns = soFilter
        let rc = insns.withUnsafeMutableBytes { p -> Int32 in
            var prog = bytes(UInt16(soFilter.count)) + [UInt8](repeating: 0, count: 6) + bytes(UInt(bitPattern: p.baseAddress))
            return setsockopt(s.fd, O.solSocket, O.soGetFilter /* SO_ATTACH_FILTER */, &prog, socklen_t(prog.count))
        }
        if rc != 0 { throw CheckpointError.errno("\(s.owner): setsockopt SO_ATTACH_FILTER (\(soFilter.count) instructions)") }
    }

    /// An external peer's entry: nothing of it is set at restore.
    static var empty: SkOptsEntry {
        var o = SkOptsEntry()
        o.soSndbuf = 0; o.soRcvbuf = 0; o.soSndTmoSec = 0; o.soSndTmoUsec = 0; o.soRcvTmoSec = 0; o.soRcvTmoUsec = 0
        return o
    }

    /// Sets every option the entry holds but SO_REUSEADDR/SO_REUSEPORT, which stay on until
    /// every socket of the tree is bound (see InetSocketRestore.finish). Buffer sizes go
    /// through the *FORCE variants: the kernel doubles what is set, and reported the
    /// doubled value at dump.
    func apply(_ s: SocketOption) throws {
        try s.set(O.solSocket, O.soSndbufforce, Int32(bitPattern: soSndbuf / 2), "SO_SNDBUFFORCE")
        try s.set(O.solSocket, O.soRcvbufforce, Int32(bitPattern: soRcvbuf / 2), "SO_RCVBUFFORCE")
        if hasSoBufLock { try s.set(O.solSocket, O.soBufLock, Int32(bitPattern: soBufLock), "SO_BUF_LOCK") }
        try setTimeval(s, O.soSndtimeo, soSndTmoSec, soSndTmoUsec, "SO_SNDTIMEO")
        try setTimeval(s, O.soRcvtimeo, soRcvTmoSec, soRcvTmoUsec, "SO_RCVTIMEO")
        if soPriority != 0 { try s.set(O.solSocket, O.soPriority, Int32(bitPattern: soPriority), "SO_PRIORITY") }
        if soRcvlowat > 1 { try s.set(O.solSocket, O.soRcvlowat, Int32(bitPattern: soRcvlowat), "SO_RCVLOWAT") }
        if soMark != 0 { try s.set(O.solSocket, O.soMark, Int32(bitPattern: soMark), "SO_MARK") }
        if soPasscred { try s.set(O.solSocket, O.soPasscred, 1, "SO_PASSCRED") }
        if soPasssec { try s.set(O.solSocket, O.soPasssec, 1, "SO_PASSSEC") }
        if soDontroute { try s.set(O.solSocket, O.soDontroute, 1, "SO_DONTROUTE") }
        if soNoCheck { try s.set(O.solSocket, O.soNoCheck, 1, "SO_NO_CHECK") }
        if soBroadcast { try s.set(O.solSocket, O.soBroadcast, 1, "SO_BROADCAST") }
        if soOobinline != 0 { try s.set(O.solSocket, O.soOobinline, 1, "SO_OOBINLINE") }
        if hasSoLinger {
            try s.set(O.solSocket, O.soLinger, bytes: bytes(Int32(1)) + bytes(soLinger), "SO_LINGER")
        }
        if hasSoBoundDev && !soBoundDev.isEmpty {
            try s.set(O.solSocket, O.soBindtodevice, bytes: Array(soBoundDev.utf8) + [0], "SO_BINDTODEVICE \(soBoundDev)")
        }
        if soKeepalive { try s.set(O.solSocket, O.soKeepalive, 1, "SO_KEEPALIVE") }
        if hasTcpKeepcnt { try s.set(O.solTCP, O.tcpKeepcnt, Int32(bitPattern: tcpKeepcnt), "TCP_KEEPCNT") }
        if hasTcpKeepidle { try s.set(O.solTCP, O.tcpKeepidle, Int32(bitPattern: tcpKeepidle), "TCP_KEEPIDLE") }
        if hasTcpKeepintvl { try s.set(O.solTCP, O.tcpKeepintvl, Int32(bitPattern: tcpKeepintvl), "TCP_KEEPINTVL") }
        if !soFilter.isEmpty { try attachFilter(s) }
        if soLockFilter { try s.set(O.solSocket, Self.soLockFilterOption, 1, "SO_LOCK_FILTER") }
    }

    private static func timeval(_ s: SocketOption, _ name: Int32, _ what: String) throws -> (UInt64, UInt64) {
        let b = try s.bytes(O.solSocket, name, 16, what)
        guard b.count == 16 else { return (0, 0) }
        return b.withUnsafeBytes { ($0.loadUnaligned(as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
    }

    private func setTimeval(_ s: SocketOption, _ name: Int32, _ sec: UInt64, _ usec: UInt64, _ what: String) throws {
        guard sec != 0 || usec != 0 else { return }
        try s.set(O.solSocket, name, bytes: bytes(sec) + bytes(usec), what)
    }
}
