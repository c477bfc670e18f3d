import LinuxKernel
import Foundation
import Testing
@testable import Engine

/// UNIX_DIAG through SockDiag on sockets of our own: what the dump learns its topology from.
@Suite("sock_diag: UNIX sockets")
struct SockDiagTests {
    static func inode(_ fd: Int32) -> UInt32 {
        var st = stat()
        fstat(fd, &st)
        return UInt32(truncatingIfNeeded: st.st_ino)
    }

    @Test("a socketpair: each end names the other, queue lengths, shutdown")
    func socketpairPeers() throws {
        var sv: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv) == 0)
        defer { close(sv[0]); close(sv[1]) }
        #expect(send(sv[0], "0123456789", 10, 0) == 10)
        #expect(shutdown(sv[0], Int32(SHUT_WR)) == 0)
        let all = try UnixDiag.all()
        let a = try #require(all[Self.inode(sv[0])]), b = try #require(all[Self.inode(sv[1])])
        #expect(a.peer == b.ino && b.peer == a.ino)
        #expect(a.type == UInt8(SOCK_STREAM.rawValue) && a.state == 1)
        #expect(b.rqueue == 10)
        #expect(a.shutdown == 2 && b.shutdown == 1)
        #expect(a.name == nil)
    }

    @Test("an abstract listener lists its not yet accepted connection by the client's inode")
    func listenerIcons() throws {
        let name = Array("\0ocw-unix-diag-\(getpid())".utf8)
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sa.sun_path) { $0.copyBytes(from: name) }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + name.count)
        let l = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0), c = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0)
        defer { close(l); close(c) }
        try withUnsafePointer(to: &sa) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { addr in
                try #require(bind(l, addr, len) == 0 && listen(l, 4) == 0)
                try #require(connect(c, addr, len) == 0)
            }
        }
        let all = try UnixDiag.all()
        let listener = try #require(all[Self.inode(l)]), client = try #require(all[Self.inode(c)])
        #expect(listener.state == 10 && listener.wqueue == 4 && listener.rqueue == 1)
        #expect(listener.icons == [client.ino])
        #expect(listener.name == name)
        #expect(client.state == 1 && client.peer == 0)
    }
}

/// INET_DIAG through SockDiag on sockets of our own: what the inet dump reads queue
/// lengths, backlogs and shutdown from.
@Suite("sock_diag: inet sockets")
struct InetDiagTests {
    static func loopback(_ fd: Int32, bind port: UInt16? = nil, connect to: UInt16? = nil) -> UInt16 {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        sa.sin_port = (to ?? port ?? 0).bigEndian
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        return withUnsafeMutablePointer(to: &sa) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { a in
                if to != nil { _ = Glibc.connect(fd, a, len) } else { _ = Glibc.bind(fd, a, len) }
                _ = getsockname(fd, a, &len)
                return UInt16(bigEndian: p.pointee.sin_port)
            }
        }
    }

    @Test("a TCP listener's backlog and pending connection; a UDP socket's shutdown")
    func listenerAndShutdown() throws {
        let l = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0), c = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let u = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(l); close(c); close(u) }
        let port = Self.loopback(l)
        try #require(listen(l, 3) == 0)
        _ = Self.loopback(c, connect: port)
        _ = Self.loopback(u, connect: port)
        try #require(shutdown(u, Int32(SHUT_WR)) == 0)
        let tcp = try InetDiag.sockets(family: AF_INET, proto: Int32(IPPROTO_TCP), inNetnsOf: getpid())
        let listener = try #require(tcp[SockDiagTests.inode(l)]), client = try #require(tcp[SockDiagTests.inode(c)])
        #expect(listener.state == 10 && listener.wqueue == 3 && listener.rqueue == 1)
        #expect(client.state == 1 && client.family == UInt8(AF_INET))
        let udp = try InetDiag.sockets(family: AF_INET, proto: Int32(IPPROTO_UDP), inNetnsOf: getpid())
        #expect(try #require(udp[SockDiagTests.inode(u)]).shutdown == 2)
    }
}
