import Foundation
import LinuxKernel
import Images

/// UNIX stream and seqpacket connections a listener holds that no one has accepted yet.
/// Their client is a socket of the tree whose entry names the listener as its peer (as
/// CRIU writes it), and a restore connects it again. That is all CRIU can do, and it is
/// enough while no client sent anything, none closed, and inode order (the restore's) is
/// the accept queue's. Otherwise the kernel gives no way to read such a connection but
/// accept(2), so a dump that ends the tree takes every connection off that listener, in
/// queue order, and writes each as an entry of its own that no fd names (our flag
/// `embryo`; its peer is its client, or the listener when the client closed), with its
/// queue in sk-queues.img. The restore connects the clients in the order of those entries
/// and sends each queue from the client's side (from a stand-in that then closes, for a
/// client that closed), so accept then read return the same connections, bytes, records,
/// files in flight and EOF. A dump that leaves the tree running cannot put a connection
/// back on the listener and refuses.
extension UnixSocketFlags {
    /// Ours: a connection a listener held, not yet accepted (CRIU has no such entry).
    static let embryo: UInt32 = 1 << 9
}

extension UnixSocketDump {
    /// Checks every listener's pending connections (clients in the tree) and, where their
    /// entries must carry them, takes them off it. Returns their files.img entries.
    func takePending(newID: () -> UInt32) throws -> [FileEntry] {
        var taken: [Dumped] = []
        for l in dumped.values.sorted(by: { $0.id < $1.id }) where l.diag.state == Self.listen && !l.diag.icons.isEmpty {
            let listener = "\(l.place): listening UNIX socket (inode \(l.diag.ino))"
            for icon in l.diag.icons where icon != 0 && dumped[icon] == nil {
                throw CheckpointError(.unsupported, "\(listener) has a pending connection from outside the dumped tree (inode \(icon))")
            }
            let closed = l.diag.icons.filter { $0 == 0 }.count
            let sent = l.diag.icons.contains { dumped[$0].map { $0.diag.wqueue != 0 } ?? false }
            let reordered = l.diag.icons != l.diag.icons.sorted()
            guard closed > 0 || sent || reordered else { continue }
            if l.entry.opts.soPasscred && (closed > 0 || sent) {
                throw CheckpointError(.unsupported, "\(listener) holds connections not yet accepted with data whose reader gets its sender's credentials (SO_PASSCRED), which a restore that sends the data again cannot keep")
            }
            guard takesPending else {
                let why = closed > 0 ? "\(closed) whose client closed its socket" : sent ? "whose clients sent data" : "queued in an order their clients' entries cannot keep"
                throw CheckpointError(.unsupported, "\(listener) holds connections not yet accepted, \(why), which only a dump that ends the tree can carry: the kernel gives no way to read them but accept(2), which takes them from the listener")
            }
            taken.append(l)
        }
        var entries: [FileEntry] = []
        for l in taken { entries += try take(from: l, newID: newID) }
        return entries
    }

    /// Accepts every connection `l` holds from our own fd on it; accept(2) takes them in
    /// queue order, the order of the client inodes UNIX_DIAG_ICONS gave (0: closed).
    private func take(from l: Dumped, newID: () -> UInt32) throws -> [FileEntry] {
        let owner = "\(l.place) (a connection not yet accepted on UNIX socket \(l.diag.ino))"
        let listener = l.pid == getpid() ? fcntl(l.fd, F_DUPFD_CLOEXEC, 0) : try Syscall.takeFd(pid: l.pid, fd: l.fd)
        if listener < 0 { throw CheckpointError.errno("\(owner): dup the listener") }
        defer { close(listener) }
        var entries: [FileEntry] = []
        for client in l.diag.icons {
            var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 0) == 1 else { throw CheckpointError(.unsupported, "\(owner): the listener holds fewer connections than sock_diag listed") }
            let fd = accept(listener, nil, nil)
            if fd < 0 { throw CheckpointError.errno("\(owner): take it off the listener") }
            defer { close(fd) }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var st = stat()
            if fstat(fd, &st) != 0 { throw CheckpointError.errno("\(owner): fstat") }
            var e = UnixSkEntry()
            e.id = newID(); e.ino = UInt32(truncatingIfNeeded: st.st_ino)
            e.type = UInt32(l.diag.type); e.state = UInt32(Self.established)
            e.flags = UInt32(O_RDWR); e.uflags = UnixSocketFlags.embryo; e.backlog = 0
            e.peer = client != 0 ? client : l.diag.ino
            e.fown = FownEntry.none; e.opts = SkOptsEntry.empty; e.name = Data(); e.shutdown = .none
            try peekQueue(fd, id: e.id, place: owner, ino: e.ino)
            var f = FileEntry()
            f.type = .unixsk; f.id = e.id; f.usk = e
            entries.append(f)
        }
        return entries
    }
}

extension UnixSocketRestore {
    /// The connections listener `l` held, not yet accepted, made again in queue order
    /// (their entries' ids): each client connects and sends what its connection held; a
    /// client that had closed is stood in for by a socket that connects, sends and closes.
    func connectPending(to l: UnixSkEntry, _ byIno: [UInt32: UnixSkEntry]) throws {
        let embryos = byIno.values.filter { $0.uflags & UnixSocketFlags.embryo != 0 && ($0.peer == l.ino || byIno[$0.peer]?.peer == l.ino) }
        for m in embryos.sorted(by: { $0.id < $1.id }) {
            if m.peer == l.ino {
                let s = socket(AF_UNIX, Int32(m.type) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
                if s < 0 { throw CheckpointError.errno("socket standing in for the closed client of UNIX socket \(m.ino)") }
                defer { close(s) }
                try inNameDirectory(of: l) {
                    try withAddress(l) { addr, len in
                        if Glibc.connect(s, addr, len) != 0 { throw CheckpointError.errno("connect a stand-in for the closed client of UNIX socket \(m.ino) to \(describe(l))") }
                    }
                }
                for p in images.skQueues[m.id] ?? [] { try send(s, p, to: m.ino) }
            } else {
                guard let c = byIno[m.peer], let s = sockets[c.ino], !connected.contains(c.ino) else {
                    throw CheckpointError(.image, "files.img: UNIX socket \(m.ino) not yet accepted names client \(m.peer), which is not in the images or connected twice")
                }
                try connect(c, to: l)
                for p in images.skQueues[m.id] ?? [] { try send(s, p, to: m.ino) }
            }
        }
    }
}
