import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

/// UNIX sockets of the dumped tree as CRIU's unix_sk_entry (in files.img) and their
/// queued data as sk-queues.img. The topology (peers, names, pending connections, queue
/// lengths) comes from UNIX_DIAG for the tree's network namespace; queues are read without
/// consuming them, through a copy of the task's fd (pidfd_getfd) peeked with SO_PEEK_OFF.
final class UnixSocketDump {
    /// The states as sock_diag reports them (one byte).
    static let established = UInt8(SocketState.established), listen = UInt8(SocketState.listen)

    struct Dumped {
        let id: UInt32, pid: Int32, fd: Int32
        let diag: UnixDiag
        let entry: UnixSkEntry
        var place: String { pid == getpid() ? "a socket in flight" : "pid \(pid) fd \(fd)" }
    }

    /// Dgram peers outside the tree may be reconnected by name at restore (CRIU's --ext-unix-sk).
    var allowExternal = false
    /// A dump that ends the tree takes connections not yet accepted off their listener.
    var takesPending = false
    private var table: [UInt32: UnixDiag]?
    private(set) var dumped: [UInt32: Dumped] = [:]        // by inode
    private(set) var queues: [(SkPacketEntry, Data)] = []
    /// Fds a peek received from SCM_RIGHTS (ours until finish), by packet index.
    private var inFlight: [(packet: Int, fds: [Int32], place: String, ino: UInt32)] = []
    /// One peek's worth; raw memory, since an array in a property would be copied per access.
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 16)

    deinit { buffer.deallocate() }

    /// The entry for socket `ino` behind `pid`'s `fd`; nil when it is not a UNIX socket.
    func entry(pid: Int32, fd: Int32, ino: UInt32, id: UInt32, flags: UInt32) throws -> UnixSkEntry? {
        if table == nil { table = try UnixDiag.all(netnsOf: pid) }
        guard let d = table?[ino] else { return nil }
        let place = pid == getpid() ? "a socket in flight" : "pid \(pid) fd \(fd)"
        let sock = try Syscall.takeFd(pid: pid, fd: fd)
        defer { Glibc.close(sock) }
        var e = UnixSkEntry()
        e.id = id; e.ino = ino; e.type = UInt32(d.type); e.state = UInt32(d.state)
        e.flags = flags; e.uflags = 0; e.fown = FownEntry.none
        e.backlog = d.state == Self.listen ? d.wqueue : 0
        e.peer = d.peer
        e.opts = try SkOptsEntry.read(SocketOption(fd: sock, owner: "\(place) (UNIX socket)"))
        e.name = Data(d.name ?? [])
        e.shutdown = SkShutdown(rawValue: Int(d.shutdown & 3)) ?? .none
        if let name = d.name, name.first.map({ $0 != 0 }) ?? false { try describePath(&e, sock, name, place) }
        if d.peer == 0 && d.state == Self.established && d.type != UInt8(SOCK_DGRAM.rawValue) {
            // A connection not yet accepted: its peer is the listener it waits on.
            if let listener = table?.values.first(where: { $0.state == Self.listen && $0.icons.contains(ino) }) {
                if d.wqueue != 0 && !takesPending {
                    throw CheckpointError(.unsupported, "\(place): UNIX socket (inode \(ino)) sent data on a connection not yet accepted, which only a dump that ends the tree can carry: the kernel gives no way to read it but accept(2), which takes the connection from the listener")
                }
                e.peer = listener.ino
            } else if d.shutdown != 3 {
                throw CheckpointError(.unsupported, "\(place): connected UNIX socket (inode \(ino)) has no peer")
            }
        }
        if d.type == UInt8(SOCK_DGRAM.rawValue) && d.peer == 0 && d.state == Self.established && Self.hasPeer(sock) {
            // Connected to a socket since closed (a server that a client connected to is
            // established too, but has no peer).
            e.uflags |= UnixSocketFlags.peerClosed
        }
        if d.state != Self.listen && d.rqueue != 0 { try peekQueue(sock, id: id, place: place, ino: ino) }
        dumped[ino] = Dumped(id: id, pid: pid, fd: fd, diag: d, entry: e)
        return e
    }

    private static func hasPeer(_ sock: Int32) -> Bool {
        var sa = sockaddr_un(), len = socklen_t(MemoryLayout<sockaddr_un>.size)
        return withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(sock, $0, &len) == 0 } }
    }

    /// A path name's directory (for relative names), file mode and owner, and whether the
    /// file was unlinked since bind: SIOCUNIXFILE opens the socket's own inode.
    private func describePath(_ e: inout UnixSkEntry, _ sock: Int32, _ name: [UInt8], _ place: String) throws {
        let file = try Syscall.rawFd("\(place): SIOCUNIXFILE on UNIX socket \(e.ino)", SyscallNumber.ioctl, Int(sock), 0x89E0 /* SIOCUNIXFILE */)
        defer { Glibc.close(file) }
        var st = stat()
        if fstat(file, &st) != 0 { throw CheckpointError.errno("\(place): stat the file of UNIX socket \(e.ino)") }
        var perms = FilePermsEntry()
        perms.mode = st.st_mode; perms.uid = st.st_uid; perms.gid = st.st_gid
        e.filePerms = perms
        var link = (try? ProcTree.link("/proc/self/fd/\(file)")) ?? ""
        if link.hasSuffix(" (deleted)") { e.deleted = true; link.removeLast(" (deleted)".count) }
        let text = String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)
        if !text.hasPrefix("/") && link.hasSuffix("/" + text) {
            e.nameDir = String(link.dropLast(text.count + 1))
        }
    }

    /// Every queued packet of `sock` in order, without consuming it: SO_PEEK_OFF makes each
    /// MSG_PEEK start where the last one ended; the task's own peek offset is put back.
    func peekQueue(_ sock: Int32, id: UInt32, place: String, ino: UInt32) throws {
        let soPeekOff: Int32 = 42
        var orig: Int32 = -1, len = socklen_t(4), zero: Int32 = 0
        if getsockopt(sock, SOL_SOCKET, soPeekOff, &orig, &len) != 0 || setsockopt(sock, SOL_SOCKET, soPeekOff, &zero, 4) != 0 {
            throw CheckpointError.errno("\(place): SO_PEEK_OFF on UNIX socket \(ino)")
        }
        defer { setsockopt(sock, SOL_SOCKET, soPeekOff, &orig, 4) }
        var control = [UInt8](repeating: 0, count: 2048)
        while true {
            var msg = msghdr()
            var flags: Int32 = 0
            let n = control.withUnsafeMutableBytes { ctl in
                var iov = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
                return withUnsafeMutablePointer(to: &iov) { iovp in
                    msg.msg_iov = iovp; msg.msg_iovlen = 1
                    msg.msg_control = ctl.baseAddress; msg.msg_controllen = ctl.count
                    let r = recvmsg(sock, &msg, Int32(MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC))
                    flags = msg.msg_flags
                    return r
                }
            }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            if n < 0 { throw CheckpointError.errno("\(place): peek the queue of UNIX socket \(ino)") }
            let rights = Self.receivedRights(control, Int(msg.msg_controllen))
            if flags & Int32(MSG_CTRUNC) != 0 {
                for fd in rights { Glibc.close(fd) }
                throw CheckpointError(.unsupported, "\(place): UNIX socket (inode \(ino)) has more file descriptors in flight in one message than can be dumped")
            }
            if flags & Int32(MSG_TRUNC) != 0 { throw CheckpointError(.unsupported, "\(place): a datagram queued on UNIX socket \(ino) is larger than \(buffer.count) bytes") }
            if n == 0 && rights.isEmpty { return }
            var p = SkPacketEntry()
            p.idFor = id; p.length = UInt32(n)
            queues.append((p, Data(bytes: buffer.baseAddress!, count: n)))
            if !rights.isEmpty { inFlight.append((queues.count - 1, rights, place, ino)) }
        }
    }

    /// The fds an SCM_RIGHTS message installed in us.
    private static func receivedRights(_ control: [UInt8], _ length: Int) -> [Int32] {
        var fds: [Int32] = [], off = 0
        let header = 16
        while off + header <= length {
            let len = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off, as: Int.self) }
            let level = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off + 8, as: Int32.self) }
            let type = control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off + 12, as: Int32.self) }
            guard len >= header, off + len <= length else { break }
            if level == SOL_SOCKET && type == Int32(SCM_RIGHTS) {
                for i in stride(from: off + header, to: off + len - 3, by: 4) {
                    fds.append(control.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i, as: Int32.self) })
                }
            }
            off += (len + 7) & ~7
        }
        return fds
    }

    /// Names each fd in flight by the file id of its open file description: the tree's
    /// entry when a task holds it, else one made for it (`fileID`). A socket only the queue
    /// holds is dumped with its own queue, whose fds join the list (chains of sockets).
    private func resolveInFlight(_ fileID: (Int32) throws -> UInt32) throws {
        defer { for f in inFlight { f.fds.forEach { Glibc.close($0) } }; inFlight = [] }
        var next = 0
        while next < inFlight.count {
            let f = inFlight[next]
            next += 1
            var scm = ScmEntry()
            scm.type = 1 // SCM_RIGHTS
            for fd in f.fds {
                do { scm.rights.append(try fileID(fd)) } catch let e as CheckpointError {
                    throw CheckpointError(e.code, "\(f.place): UNIX socket (inode \(f.ino)) queue: \(e.message)", errno: e.errno, cause: e)
                }
            }
            queues[f.packet].0.scm = [scm]
        }
    }

    /// Checks what only the whole tree tells: every peer and every pending connection is
    /// inside it (or, with --ext-unix-sk, a named datagram peer outside), and so is every
    /// file in flight. Returns the files.img entries for those external peers.
    func finish(newID: () -> UInt32, fileID: (Int32) throws -> UInt32) throws -> [FileEntry] {
        let pending = try takePending(newID: newID)
        try resolveInFlight(fileID)
        var externals: [UInt32: FileEntry] = [:]
        for d in dumped.values.sorted(by: { $0.id < $1.id }) {
            let peer = d.entry.peer
            if let p = dumped[peer], p.entry.peer != d.diag.ino, p.entry.name.isEmpty {
                throw CheckpointError(.unsupported, "\(d.place): UNIX socket (inode \(d.diag.ino)) is connected to an unnamed socket (inode \(peer)) that is connected elsewhere, which cannot be rebuilt")
            }
            guard peer != 0, dumped[peer] == nil else { continue }
            guard allowExternal else {
                throw CheckpointError(.unsupported, "\(d.place): UNIX socket connected to a peer outside the dumped tree (inode \(peer)); dump with --ext-unix-sk")
            }
            guard d.diag.type == UInt8(SOCK_DGRAM.rawValue), let p = table?[peer], let name = p.name, !name.isEmpty else {
                throw CheckpointError(.unsupported, "\(d.place): UNIX socket (inode \(d.diag.ino)) is connected to a peer outside the dumped tree (inode \(peer)) that cannot be reconnected: only named datagram peers can, with --ext-unix-sk")
            }
            if externals[peer] == nil {
                var e = UnixSkEntry()
                e.id = newID(); e.ino = peer; e.type = UInt32(SOCK_DGRAM.rawValue); e.state = UInt32(Self.listen)
                e.flags = 0; e.uflags = UnixSocketFlags.external; e.backlog = 0; e.peer = 0
                e.fown = FownEntry.none; e.opts = SkOptsEntry.empty; e.name = Data(name)
                var f = FileEntry()
                f.type = .unixsk; f.id = e.id; f.usk = e
                externals[peer] = f
            }
        }
        return pending + externals.values.sorted { $0.id < $1.id }
    }

    func write(to images: ImageDirectory) throws {
        let w = try images.writer(.skQueues)
        for (e, d) in queues { try w.append(e); try w.appendRaw(d) }
        try w.close()
    }
}

extension UnixSocketFlags {
    /// Ours, beside CRIU's: a datagram socket whose peer was closed (a send is refused
    /// with ECONNREFUSED, once). CRIU reads it as unconnected.
    static let peerClosed: UInt32 = 1 << 8
}
