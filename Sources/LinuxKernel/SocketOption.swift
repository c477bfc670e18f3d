import Foundation

/// getsockopt/setsockopt on a socket fd of ours, errors naming the option and the socket.
public struct SocketOption {
    public let fd: Int32
    /// Names the socket in messages: "pid 812 fd 3".
    public let owner: String

    public init(fd: Int32, owner: String) { self.fd = fd; self.owner = owner }

    // Levels and option names (x86_64 values).
    public static let solSocket: Int32 = 1, solIP: Int32 = 0, solTCP: Int32 = 6, solIPv6: Int32 = 41
    public static let soReuseaddr: Int32 = 2, soType: Int32 = 3, soDontroute: Int32 = 5, soBroadcast: Int32 = 6
    public static let soSndbuf: Int32 = 7, soRcvbuf: Int32 = 8, soKeepalive: Int32 = 9, soOobinline: Int32 = 10
    public static let soNoCheck: Int32 = 11, soPriority: Int32 = 12, soLinger: Int32 = 13, soReuseport: Int32 = 15
    public static let soPasscred: Int32 = 16, soRcvlowat: Int32 = 18, soRcvtimeo: Int32 = 20, soSndtimeo: Int32 = 21
    public static let soBindtodevice: Int32 = 25, soGetFilter: Int32 = 26, soSndbufforce: Int32 = 32
    public static let soRcvbufforce: Int32 = 33, soPasssec: Int32 = 34, soMark: Int32 = 36, soProtocol: Int32 = 38
    public static let soDomain: Int32 = 39, soBufLock: Int32 = 72
    public static let ipTos: Int32 = 1, ipFreebind: Int32 = 15, ipv6V6only: Int32 = 26
    public static let tcpNodelay: Int32 = 1, tcpMaxseg: Int32 = 2, tcpCork: Int32 = 3, tcpKeepidle: Int32 = 4
    public static let tcpKeepintvl: Int32 = 5, tcpKeepcnt: Int32 = 6, tcpInfo: Int32 = 11, tcpRepair: Int32 = 19
    public static let tcpRepairQueue: Int32 = 20, tcpQueueSeq: Int32 = 21, tcpRepairOptions: Int32 = 22
    public static let tcpTimestamp: Int32 = 24, tcpRepairWindow: Int32 = 29

    public func int(_ level: Int32, _ name: Int32, _ what: String) throws -> Int32 {
        var v: Int32 = 0
        var len = socklen_t(4)
        if getsockopt(fd, level, name, &v, &len) != 0 { throw CheckpointError.errno("\(owner): getsockopt \(what)") }
        return v
    }

    public func bool(_ level: Int32, _ name: Int32, _ what: String) throws -> Bool { try int(level, name, what) != 0 }

    /// An option this kind of socket or kernel may not have (EOPNOTSUPP, ENOPROTOOPT): nil then.
    public func optionalInt(_ level: Int32, _ name: Int32, _ what: String) throws -> Int32? {
        var v: Int32 = 0
        var len = socklen_t(4)
        if getsockopt(fd, level, name, &v, &len) == 0 { return v }
        if errno == EOPNOTSUPP || errno == ENOPROTOOPT { return nil }
        throw CheckpointError.errno("\(owner): getsockopt \(what)")
    }

    public func bytes(_ level: Int32, _ name: Int32, _ size: Int, _ what: String) throws -> [UInt8] {
        var b = [UInt8](repeating: 0, count: size)
        var len = socklen_t(size)
        if getsockopt(fd, level, name, &b, &len) != 0 { throw CheckpointError.errno("\(owner): getsockopt \(what)") }
        return Array(b.prefix(Int(len)))
    }

    public func set(_ level: Int32, _ name: Int32, _ value: Int32, _ what: String) throws {
        var v = value
        if setsockopt(fd, level, name, &v, 4) != 0 { throw CheckpointError.errno("\(owner): setsockopt \(what) to \(value)") }
    }

    public func set(_ level: Int32, _ name: Int32, bytes: [UInt8], _ what: String) throws {
        if setsockopt(fd, level, name, bytes, socklen_t(bytes.count)) != 0 { throw CheckpointError.errno("\(owner): setsockopt \(what)") }
    }
}
