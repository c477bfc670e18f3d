import Foundation
import LinuxKernel
import CShim
import Images

/// Rebuilds every UNIX socket of the images at once, in the restorer's own process, on a
/// thread that joined the tree's network namespace (abstract names and the sockets' own
/// namespace are the tree's) and, when the tree has its own root, chrooted into it (path
/// names land inside the tree). Order matters: names, listeners, datagram queues (before
/// the receiver connects and refuses strangers), connections, stream queues (re-sent from
/// the peer), shutdown, file flags. Tasks then take the sockets like any other file.
final class UnixSocketRestore {
    /// One queued packet: its bytes and the file ids it carries (SCM_RIGHTS).
    struct Packet {
        let data: Data
        let rights: [UInt32]
    }

    private static let established = SocketState.established, listening = SocketState.listen
    private static let dgram = UInt32(SOCK_DGRAM.rawValue)
    private let images: CheckpointImages
    private var sockets: [UInt32: Int32] = [:]    // by inode
    private var byID: [UInt32: UInt32] = [:]      // file id -> inode
    private var built = false

    init(images: CheckpointImages) { self.images = images }

    deinit { for fd in sockets.values { close(fd) } }

    /// Fds of the other files that travel in queues (SCM_RIGHTS), by file id; not ours to close.
    private var carried: [UInt32: Int32] = [:]

    /// A new fd (ours, close-on-exec) on the socket of file `id`. `files` opens any other
    /// file of the images; it is asked before the sockets' thread leaves our root.
    func fd(for id: UInt32, rootPid: Int32, rootDir: Int32, files: (UInt32) throws -> Int32) throws -> Int32 {
        if !built {
            built = true
            for r in Set(images.skQueues.values.flatMap { $0.flatMap(\.rights) }) where images.files[r]?.type != .unixsk {
                carried[r] = try files(r)
            }
            try NamespaceJoin.run(in: rootPid, [.net]) { try self.build(rootDir: rootDir) }
        }
        guard let ino = byID[id], let sock = sockets[ino] else { throw CheckpointError(.image, "files.img: UNIX socket \(id) was not rebuilt") }
        let fd = fcntl(sock, F_DUPFD_CLOEXEC, 0)
        if fd < 0 { throw CheckpointError.errno("dup UNIX socket \(id)") }
        return fd
    }

    private func build(rootDir: Int32) throws {
        if rootDir >= 0 && (fchdir(rootDir) != 0 || chroot(".") != 0) { throw CheckpointError.errno("enter the tree's root to bind UNIX sockets") }
        let all = images.files.values.filter { $0.type == .unixsk }.map(\.usk).sorted { $0.ino < $1.ino }
        var byIno: [UInt32: UnixSkEntry] = [:]
        for e in all { byIno[e.ino] = e }
        let ours = all.filter { $0.uflags & UnixSocketFlags.external == 0 }
        var pairs: Set<UInt32> = []
        var closedPeers: [UInt32: Int32] = [:]
        defer { closedPeers.values.forEach { close($0) } }
        for e in ours where sockets[e.ino] == nil {
            byID[e.id] = e.ino
            let type = Int32(e.type) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
            if let p = byIno[e.peer], p.peer == e.ino, p.uflags & UnixSocketFlags.external == 0, e.state != Self.listening, p.state != Self.listening {
                var sv: [Int32] = [0, 0]
                if socketpair(AF_UNIX, type, 0, &sv) != 0 { throw CheckpointError.errno("socketpair for UNIX sockets \(e.ino) and \(p.ino)") }
                sockets[e.ino] = sv[0]; sockets[p.ino] = sv[1]
                pairs.formUnion([e.ino, p.ino])
            } else if e.state == Self.established && e.type != Self.dgram && e.peer == 0 {
                // Its peer was closed: a partner refills the queue, then goes.
                var sv: [Int32] = [0, 0]
                if socketpair(AF_UNIX, type, 0, &sv) != 0 { throw CheckpointError.errno("socketpair for UNIX socket \(e.ino)") }
                sockets[e.ino] = sv[0]; closedPeers[e.ino] = sv[1]
            } else {
                let s = socket(AF_UNIX, type, 0)
                if s < 0 { throw CheckpointError.errno("socket for UNIX socket \(e.ino)") }
                sockets[e.ino] = s
            }
        }
        for e in ours { byID[e.id] = e.ino; try e.opts.apply(SocketOption(fd: sockets[e.ino]!, owner: "UNIX socket \(e.ino)")) }
        // Connected stream sockets get no name, as in CRIU: theirs is their listener's.
        // Names unlinked before the dump first: a live name at the same path replaces them.
        for e in ours.sorted(by: { $0.deleted && !$1.deleted }) where !e.name.isEmpty && (e.type == Self.dgram || e.state != Self.established) {
            try bind(e)
        }
        for e in ours where e.state == Self.listening {
            if listen(sockets[e.ino]!, Int32(max(e.backlog, 1))) != 0 { throw CheckpointError.errno("listen on UNIX socket \(e.ino)") }
        }
        for e in ours where e.type == Self.dgram && !pairs.contains(e.ino) {
            try refillDatagrams(e)
        }
        for e in ours where e.peer != 0 && !pairs.contains(e.ino) {
            guard let target = byIno[e.peer] else { throw CheckpointError(.image, "files.img: UNIX socket \(e.ino) names peer \(e.peer), which is not in the images") }
            try withAddress(target) { addr, len in
                if connect(sockets[e.ino]!, addr, len) != 0 { throw CheckpointError.errno("connect UNIX socket \(e.ino) to \(describe(target))") }
            }
        }
        // A name unlinked before the dump served the refill and the connects; now it goes,
        // unless the path is another socket's by now.
        for e in ours where e.deleted && !e.name.isEmpty && e.name.first != 0 {
            if !e.nameDir.isEmpty && e.name.first != UInt8(ascii: "/") && chdir(e.nameDir) != 0 { continue }
            var st = stat(), own = stat()
            let file = (try? Syscall.rawFd("SIOCUNIXFILE", SyscallNumber.ioctl, Int(sockets[e.ino]!), 0x89E0 /* SIOCUNIXFILE */)) ?? -1
            if file >= 0 && fstat(file, &own) == 0 && lstat(describe(e), &st) == 0 && st.st_ino == own.st_ino && st.st_dev == own.st_dev {
                unlink(describe(e))
            }
            if file >= 0 { close(file) }
            _ = chdir("/")
        }
        for e in ours where pairs.contains(e.ino) {
            for d in images.skQueues[e.id] ?? [] { try send(sockets[e.peer]!, d, to: e.ino) }
        }
        for (ino, partner) in closedPeers {
            for d in images.skQueues[byIno[ino]!.id] ?? [] { try send(partner, d, to: ino) }
            closedPeers[ino] = nil
            close(partner)
        }
        for e in ours where e.shutdown != .none {
            let how = e.shutdown == .read ? SHUT_RD : e.shutdown == .write ? SHUT_WR : SHUT_RDWR
            if shutdown(sockets[e.ino]!, Int32(how)) != 0 && errno != ENOTCONN { throw CheckpointError.errno("shutdown UNIX socket \(e.ino)") }
        }
        for e in ours where fcntl(sockets[e.ino]!, F_SETFL, Int32(bitPattern: e.flags) & ~O_ACCMODE) != 0 {
            throw CheckpointError.errno("set file flags of UNIX socket \(e.ino)")
        }
    }

    /// Datagrams queued on a socket outside a pair are re-sent to its name from a socket of ours.
    private func refillDatagrams(_ e: UnixSkEntry) throws {
        guard let data = images.skQueues[e.id], !data.isEmpty else { return }
        guard !e.name.isEmpty else {
            throw CheckpointError(.image, "UNIX socket \(e.ino) has \(data.count) queued datagrams but no name to send them to")
        }
        let s = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        if s < 0 { throw CheckpointError.errno("socket to refill UNIX socket \(e.ino)") }
        defer { close(s) }
        try withAddress(e) { addr, len in
            if connect(s, addr, len) != 0 { throw CheckpointError.errno("connect to refill UNIX socket \(e.ino)") }
        }
        for d in data { try send(s, d, to: e.ino) }
    }

    private func send(_ fd: Int32, _ packet: Packet, to ino: UInt32) throws {
        let fds = try packet.rights.map { id -> Int32 in
            if let s = byID[id].flatMap({ sockets[$0] }) ?? carried[id] { return s }
            throw CheckpointError(.image, "sk-queues.img: a packet for UNIX socket \(ino) carries file \(id), which was not restored")
        }
        let data = packet.data
        let header = 16, space = header + ((fds.count * 4 + 7) & ~7)
        var control = [UInt8](repeating: 0, count: fds.isEmpty ? 0 : space)
        if !fds.isEmpty {
            control.withUnsafeMutableBytes { c in
                c.storeBytes(of: header + fds.count * 4, toByteOffset: 0, as: Int.self)
                c.storeBytes(of: SOL_SOCKET, toByteOffset: 8, as: Int32.self)
                c.storeBytes(of: Int32(SCM_RIGHTS), toByteOffset: 12, as: Int32.self)
                for (i, fd) in fds.enumerated() { c.storeBytes(of: fd, toByteOffset: header + i * 4, as: Int32.self) }
            }
        }
        let n = data.withUnsafeBytes { d in
            control.withUnsafeMutableBytes { c in
                var iov = iovec(iov_base: UnsafeMutableRawPointer(mutating: d.baseAddress), iov_len: data.count)
                return withUnsafeMutablePointer(to: &iov) { iovp in
                    var msg = msghdr()
                    msg.msg_iov = iovp; msg.msg_iovlen = 1
                    msg.msg_control = fds.isEmpty ? nil : c.baseAddress; msg.msg_controllen = fds.isEmpty ? 0 : c.count
                    return sendmsg(fd, &msg, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                }
            }
        }
        if n != data.count { throw CheckpointError.errno("refill the queue of UNIX socket \(ino) with \(data.count) bytes (sent \(n))") }
    }

    private func bind(_ e: UnixSkEntry) throws {
        let path = [UInt8](e.name)
        if path.first != 0 {
            if !e.nameDir.isEmpty && path.first != UInt8(ascii: "/") && chdir(e.nameDir) != 0 {
                throw CheckpointError.errno("chdir to \(e.nameDir) to bind UNIX socket \(e.ino)")
            }
            // The file of the dumped socket is still there after a dump that killed it.
            var st = stat()
            if lstat(describe(e), &st) == 0 && st.st_mode & S_IFMT == S_IFSOCK { unlink(describe(e)) }
        }
        try withAddress(e) { addr, len in
            if Glibc.bind(sockets[e.ino]!, addr, len) != 0 { throw CheckpointError.errno("bind UNIX socket \(e.ino) to \(describe(e))") }
        }
        if path.first != 0 {
            if e.hasFilePerms {
                chmod(describe(e), mode_t(e.filePerms.mode & 0o7777))
                chown(describe(e), e.filePerms.uid, e.filePerms.gid)
            }
        }
        if chdir("/") != 0 { throw CheckpointError.errno("chdir back to the root after binding UNIX socket \(e.ino)") }
    }

    private func describe(_ e: UnixSkEntry) -> String {
        let b = [UInt8](e.name)
        return b.first == 0 ? "@" + String(decoding: b.dropFirst(), as: UTF8.self) : String(decoding: b.prefix { $0 != 0 }, as: UTF8.self)
    }

    private func withAddress(_ e: UnixSkEntry, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Void) throws {
        let name = [UInt8](e.name)
        var sa = sockaddr_un()
        guard name.count <= MemoryLayout.size(ofValue: sa.sun_path) else {
            throw CheckpointError(.image, "UNIX socket \(e.ino): name of \(name.count) bytes does not fit sun_path")
        }
        sa.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sa.sun_path) { $0.copyBytes(from: name) }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + name.count)
        try withUnsafePointer(to: &sa) { try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, len) } }
    }

    /// sk-queues.img: the packets queued on each socket, by the file id of their receiver.
    static func queues(_ dir: ImageDirectory) throws -> [UInt32: [Packet]] {
        var out: [UInt32: [Packet]] = [:]
        guard dir.exists(.skQueues) else { return out }
        var r = try dir.reader(.skQueues)
        do {
            while let e = try r.next(SkPacketEntry.self) {
                if let scm = e.scm.first(where: { $0.type != 1 /* SCM_RIGHTS */ }) {
                    throw CheckpointError(.image, "sk-queues.img: a packet for socket \(e.idFor) carries control message type \(scm.type), which cannot be restored")
                }
                out[e.idFor, default: []].append(Packet(data: try r.raw(Int(e.length)), rights: e.scm.flatMap(\.rights)))
            }
        } catch let e as ImageError { throw e.checkpointError }
        return out
    }
}
