import Foundation
import CShim
import LinuxKernel
import Images
import ProcFS

/// netns-<id>.img and netdev-<id>.img for a net namespace that holds only its loopback
/// device: the device's name, index, mtu and flags (up or down). Any other device is
/// refused: containers normally get their network from the runtime (runc passes the net
/// namespace as empty_ns), and veth/tun/bridge state is not dumped yet.
public enum NetNamespace {
    static let iffUp: UInt32 = 0x1
    static let iffLoopback: UInt32 = 0x8
    static let siocgifflags = 0x8913, siocsifflags = 0x8914, siocgifmtu = 0x8921, siocsifmtu = 0x8922
    static let siocgifindex = 0x8933

    /// The devices of `pid`'s net namespace; throws unless every one is a loopback device.
    public static func read(pid: Int32) throws -> [NetDeviceEntry] {
        let names = try deviceNames(pid: pid)
        return try NamespaceJoin.run(in: pid, [.net]) {
            let sock = try controlSocket(pid: pid)
            defer { close(sock) }
            return try names.map { name in
                var e = NetDeviceEntry()
                e.name = name
                e.flags = UInt32(UInt16(bitPattern: try ifreqShort(sock, name, siocgifflags, pid: pid)))
                guard e.flags & iffLoopback != 0 else {
                    throw CheckpointError(.unsupported, "net namespace of pid \(pid): device \(name) is not a loopback device; only lo can be dumped (pass the net namespace as empty, CRIU's empty_ns / --empty-ns network, and let the runtime rebuild it)")
                }
                e.type = .loopback
                e.mtu = UInt32(bitPattern: try ifreqInt(sock, name, siocgifmtu, pid: pid))
                e.ifindex = UInt32(bitPattern: try ifreqInt(sock, name, siocgifindex, pid: pid))
                e.address = Data(count: 6)
                return e
            }
        }
    }

    public static func dump(pid: Int32, id: UInt32, images: ImageDirectory, log: Log) throws {
        let devices = try read(pid: pid)
        try images.write(.netns(id), [NetnsEntry()])
        try images.write(.netdev(id), devices)
        log.info("net namespace of pid \(pid): \(devices.map { "\($0.name) (\($0.flags & iffUp != 0 ? "up" : "down"))" }.joined(separator: ", "))")
    }

    /// Sets the loopback device of `pid`'s new net namespace as it was dumped.
    public static func restore(pid: Int32, id: UInt32, images: ImageDirectory, log: Log) throws {
        let devices = try images.read(.netdev(id), as: NetDeviceEntry.self)
        for d in devices where d.type != .loopback {
            throw CheckpointError(.unsupported, "image \(images.file(.netdev(id))): device \(d.name) of type \(d.type) cannot be restored yet (only the loopback device)")
        }
        try NamespaceJoin.run(in: pid, [.net]) {
            let sock = try controlSocket(pid: pid)
            defer { close(sock) }
            for d in devices {
                if d.hasMtu, try ifreqInt(sock, d.name, siocgifmtu, pid: pid) != Int32(bitPattern: d.mtu) {
                    try ifreqSet(sock, d.name, siocsifmtu, Int32(bitPattern: d.mtu), pid: pid)
                }
                try setUp(sock, d.name, d.flags & iffUp != 0, pid: pid)
            }
        }
        log.info("net namespace of pid \(pid): \(devices.map(\.name).joined(separator: ", ")) restored")
    }

    /// Brings the loopback device of `pid`'s (empty) net namespace up, as CRIU does for an
    /// empty_ns net namespace.
    public static func bringLoopbackUp(pid: Int32, log: Log) throws {
        try NamespaceJoin.run(in: pid, [.net]) {
            let sock = try controlSocket(pid: pid)
            defer { close(sock) }
            try setUp(sock, "lo", true, pid: pid)
        }
        log.info("net namespace of pid \(pid): lo up")
    }

    /// Whether `name` is up in `pid`'s net namespace.
    public static func isUp(_ name: String, pid: Int32) throws -> Bool {
        try NamespaceJoin.run(in: pid, [.net]) {
            let sock = try controlSocket(pid: pid)
            defer { close(sock) }
            return UInt32(UInt16(bitPattern: try ifreqShort(sock, name, siocgifflags, pid: pid))) & iffUp != 0
        }
    }

    /// Device names from /proc/PID/net/dev, which shows the net namespace of PID.
    static func deviceNames(pid: Int32) throws -> [String] {
        let text: String
        do { text = try readProcFile("/proc/\(pid)/net/dev") } catch {
            throw CheckpointError(.notFound, "read /proc/\(pid)/net/dev: \(error)", cause: error)
        }
        // two header lines, then "  name: counters..."
        return text.split(separator: "\n").dropFirst(2).compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return line[..<colon].trimmingCharacters(in: .whitespaces)
        }
    }

    private static func setUp(_ sock: Int32, _ name: String, _ up: Bool, pid: Int32) throws {
        let flags = UInt16(bitPattern: try ifreqShort(sock, name, siocgifflags, pid: pid))
        let wanted = up ? flags | UInt16(iffUp) : flags & ~UInt16(iffUp)
        if wanted != flags { try ifreqSet(sock, name, siocsifflags, Int32(Int16(bitPattern: wanted)), pid: pid, short: true) }
    }

    private static func controlSocket(pid: Int32) throws -> Int32 {
        // A socket belongs to the net namespace of the thread that creates it.
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw CheckpointError.errno("socket in the net namespace of pid \(pid)") }
        return fd
    }

    /// struct ifreq: 16 bytes of name, then a union (flags: short, mtu/ifindex: int).
    private static func ifreq(_ name: String, value: Int32 = 0, short: Bool = false) -> [UInt8] {
        var r = [UInt8](repeating: 0, count: 40)
        for (i, b) in name.utf8.prefix(15).enumerated() { r[i] = b }
        if short {
            withUnsafeBytes(of: Int16(truncatingIfNeeded: value).littleEndian) { r.replaceSubrange(16..<18, with: $0) }
        } else {
            withUnsafeBytes(of: value.littleEndian) { r.replaceSubrange(16..<20, with: $0) }
        }
        return r
    }

    private static func ioctl(_ sock: Int32, _ request: Int, _ req: inout [UInt8], _ what: String, pid: Int32) throws {
        try req.withUnsafeMutableBytes {
            _ = try Syscall.raw("\(what) in the net namespace of pid \(pid)", SyscallNumber.ioctl, Int(sock), request, Int(bitPattern: $0.baseAddress))
        }
    }

    private static func ifreqShort(_ sock: Int32, _ name: String, _ request: Int, pid: Int32) throws -> Int16 {
        var req = ifreq(name)
        try ioctl(sock, request, &req, "read the flags of \(name)", pid: pid)
        return req.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: Int16.self) }
    }

    private static func ifreqInt(_ sock: Int32, _ name: String, _ request: Int, pid: Int32) throws -> Int32 {
        var req = ifreq(name)
        try ioctl(sock, request, &req, "read \(request == siocgifmtu ? "the mtu" : "the index") of \(name)", pid: pid)
        return req.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: Int32.self) }
    }

    private static func ifreqSet(_ sock: Int32, _ name: String, _ request: Int, _ value: Int32, pid: Int32, short: Bool = false) throws {
        var req = ifreq(name, value: value, short: short)
        try ioctl(sock, request, &req, request == siocsifmtu ? "set the mtu of \(name) to \(value)" : "set the flags of \(name) to 0x\(String(UInt16(truncatingIfNeeded: value), radix: 16))", pid: pid)
    }
}
