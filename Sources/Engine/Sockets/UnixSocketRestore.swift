import Foundation
import LinuxKernel
import CShim
import Images

/// Rebuilds every UNIX socket of the images at once, in the restorer's own process, on a
/// thread that joined the tree's network namespace (abstract names and the sockets' own
/// namespace are the tree's) and, when the tree has its own root, chrooted into it (path
/// names land inside the tree). Order matters: queues refilled by a stand-in peer, names,
/// listeners, datagram queues (before the receiver connects and refuses strangers), names
/// unlinked since bind (bound for the moment their clients connect), connections, queues
/// re-sent from the peer, shutdown, file flags. Tasks then take the sockets like any
/// other file; sockets only a queue holds (in flight) are built the same way.
final class UnixSocketRestore {
    /// One queued packet: its bytes and the file ids it carries (SCM_RIGHTS).
    struct Packet {
        let data: Data
        let rights: [UInt32]
    }

    static let established = SocketState.established, listening = SocketState.listen
    static let dgram = UInt32(SOCK_DGRAM.rawValue)
    let images: CheckpointImages
    var sockets: [UInt32: Int32] = [:]    // by inode
    var byID: [UInt32: UInt32] = [:]      // file id -> inode
    /// Datagram queues already refilled, by inode.
    var refilled: Set<UInt32> = []
    /// Sockets already connected to their peer, by inode.
    var connected: Set<UInt32> = []
    private var built = false

    init(images: CheckpointImages) { self.images = images }

    deinit { for fd in sockets.values { close(fd) } }

    /// Fds of the other files that travel in queues (SCM_RIGHTS), by file id; not ours to close.
    var carried: [UInt32: Int32] = [:]

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
        let ours = all.filter { $0.uflags & (UnixSocketFlags.external | UnixSocketFlags.embryo) == 0 }
        var pairs: Set<UInt32> = []
        var partners: [UInt32: Int32] = [:]
        defer { partners.values.forEach { close($0) } }
        for e in ours where sockets[e.ino] == nil {
            byID[e.id] = e.ino
            let type = Int32(e.type) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
            if let p = byIno[e.peer], p.peer == e.ino, p.uflags & UnixSocketFlags.external == 0, e.state != Self.listening, p.state != Self.listening {
                var sv: [Int32] = [0, 0]
                if socketpair(AF_UNIX, type, 0, &sv) != 0 { throw CheckpointError.errno("socketpair for UNIX sockets \(e.ino) and \(p.ino)") }
                sockets[e.ino] = sv[0]; sockets[p.ino] = sv[1]
                pairs.formUnion([e.ino, p.ino])
            } else if needsStandIn(e) {
                var sv: [Int32] = [0, 0]
                if socketpair(AF_UNIX, type, 0, &sv) != 0 { throw CheckpointError.errno("socketpair for UNIX socket \(e.ino)") }
                sockets[e.ino] = sv[0]; partners[e.ino] = sv[1]
                if e.type == Self.dgram && !peerClosed(e) {
                    // It forgets its partner, which may still send to it: a later connect
                    // away from a (dead) partner would flush the queue, and a disconnect
                    // now flushes only an empty one.
                    try disconnect(sv[0], e)
                }
            } else {
                let s = socket(AF_UNIX, type, 0)
                if s < 0 { throw CheckpointError.errno("socket for UNIX socket \(e.ino)") }
                sockets[e.ino] = s
            }
        }
        for e in ours { byID[e.id] = e.ino; try e.opts.apply(SocketOption(fd: sockets[e.ino]!, owner: "UNIX socket \(e.ino)")) }
        for (ino, partner) in partners.sorted(by: { $0.key < $1.key }) {
            for d in images.skQueues[byIno[ino]!.id] ?? [] { try send(partner, d, to: ino) }
            refilled.insert(ino)
            partners[ino] = nil
            close(partner)
        }
        try nameConnectedStreams(ours, all)
        let named = ours.filter { !$0.name.isEmpty && ($0.type == Self.dgram || $0.state != Self.established) }
        let ghosts = named.filter { $0.deleted && $0.name.first != 0 }
        let ghostInos = Set(ghosts.map(\.ino))
        for e in named where !ghostInos.contains(e.ino) { try bind(e) }
        for e in ours where e.state == Self.listening && !ghostInos.contains(e.ino) { try listen(e) }
        for e in ours where e.type == Self.dgram && !pairs.contains(e.ino) && !ghostInos.contains(e.ino) { try refillDatagrams(e) }
        for e in ours where e.state == Self.listening && !ghostInos.contains(e.ino) { try connectPending(to: e, byIno) }
        for g in ghosts {
            try bindForTheMoment(g) {
                if g.state == Self.listening { try listen(g); try connectPending(to: g, byIno) }
                if g.type == Self.dgram { try refillDatagrams(g) }
                for e in ours where e.peer == g.ino && !pairs.contains(e.ino) && !connected.contains(e.ino) {
                    if e.type == Self.dgram { try refillDatagrams(e) }
                    try connect(e, to: g)
                }
            }
        }
        for e in ours where e.peer != 0 && !pairs.contains(e.ino) && !connected.contains(e.ino) {
            guard let target = byIno[e.peer] else { throw CheckpointError(.image, "files.img: UNIX socket \(e.ino) names peer \(e.peer), which is not in the images") }
            try connect(e, to: target)
        }
        for e in ours where pairs.contains(e.ino) {
            for d in images.skQueues[e.id] ?? [] { try send(sockets[e.peer]!, d, to: e.ino) }
        }
        for e in ours where e.shutdown != .none {
            let how = e.shutdown == .read ? SHUT_RD : e.shutdown == .write ? SHUT_WR : SHUT_RDWR
            if shutdown(sockets[e.ino]!, Int32(how)) != 0 && errno != ENOTCONN { throw CheckpointError.errno("shutdown UNIX socket \(e.ino)") }
        }
        for e in ours where fcntl(sockets[e.ino]!, F_SETFL, Int32(bitPattern: e.flags) & ~O_ACCMODE) != 0 {
            throw CheckpointError.errno("set file flags of UNIX socket \(e.ino)")
        }
    }

    /// A connected stream socket's name is its listener's (accepted there) or its own
    /// (bound before it connected), as getsockname and the peer's getpeername show it.
    /// CRIU leaves them unnamed. A listener's path name, or one whose file is gone, is
    /// bound for the moment only, before the listener binds: the file is the listener's
    /// or nobody's. A listener's abstract name cannot be held twice and stays unnamed.
    private func nameConnectedStreams(_ ours: [UnixSkEntry], _ all: [UnixSkEntry]) throws {
        for e in ours where !e.name.isEmpty && e.type != Self.dgram && e.state == Self.established {
            let listeners = all.contains { $0.state == Self.listening && $0.name == e.name && $0.nameDir == e.nameDir }
            if e.name.first == 0 {
                if !listeners { try bind(e) }
            } else if listeners || e.deleted {
                try bindForTheMoment(e) {}
            } else {
                try bind(e)
            }
        }
    }

    /// A socket whose queue no peer or name of the images can refill, or whose peer was
    /// closed: it is made as one end of a pair whose other end refills it, then goes (the
    /// peer that was closed, as the kernel still sees it: EOF, or ECONNREFUSED on a send).
    private func needsStandIn(_ e: UnixSkEntry) -> Bool {
        if e.type != Self.dgram { return e.state == Self.established && e.peer == 0 }
        return peerClosed(e) || e.name.isEmpty && !(images.skQueues[e.id] ?? []).isEmpty
    }

    /// A datagram socket whose peer was closed: our flag, or (in CRIU's images too) an
    /// unnamed one that is established without a peer, since nothing can connect to a
    /// socket without a name (a named one may be a server clients connected to).
    private func peerClosed(_ e: UnixSkEntry) -> Bool {
        e.uflags & UnixSocketFlags.peerClosed != 0 || e.name.isEmpty && e.state == Self.established && e.peer == 0
    }

    private func disconnect(_ fd: Int32, _ e: UnixSkEntry) throws {
        var unspec = sockaddr()
        unspec.sa_family = sa_family_t(AF_UNSPEC)
        if Glibc.connect(fd, &unspec, socklen_t(MemoryLayout<sa_family_t>.size)) != 0 {
            throw CheckpointError.errno("disconnect UNIX socket \(e.ino) from its stand-in peer")
        }
    }

    private func listen(_ e: UnixSkEntry) throws {
        if Glibc.listen(sockets[e.ino]!, Int32(max(e.backlog, 1))) != 0 { throw CheckpointError.errno("listen on UNIX socket \(e.ino)") }
    }

    func connect(_ e: UnixSkEntry, to target: UnixSkEntry) throws {
        try inNameDirectory(of: target) {
            try withAddress(target) { addr, len in
                if Glibc.connect(sockets[e.ino]!, addr, len) != 0 { throw CheckpointError.errno("connect UNIX socket \(e.ino) to \(describe(target))") }
            }
        }
        connected.insert(e.ino)
    }
}
