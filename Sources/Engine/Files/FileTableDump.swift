import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

/// Collects the open files of every dumped process into CRIU's files.img (one entry per
/// open file description) and fdinfo-N.img (one entry per fd), plus pipe/FIFO contents
/// and the contents of deleted-but-open files.
final class FileTableDump {
    var files: [FileEntry] = []
    private(set) var pipeData: [(PipeDataEntry, Data)] = []
    private(set) var fifoData: [(PipeDataEntry, Data)] = []
    var ghosts: [GhostFileSource] = []
    var ghostIDs: [String: UInt32] = [:]   // (dev, ino) of a deleted file -> its ghost id
    var remaps: [RemapFilePathEntry] = []
    /// --ghost-limit: the largest deleted file whose contents go into the image.
    var ghostLimit = FileTableDump.defaultGhostLimit
    /// --link-remap: a deleted file still linked elsewhere gets a link of its own.
    var linkRemaps = false
    var createdLinks: [String] = []
    /// Namespace files whose ns id is known once every task's namespaces are numbered.
    var pendingNamespaces: [(id: UInt32, kind: NamespaceKind, inode: UInt64, at: String)] = []
    private var nextID: UInt32 = 1
    /// Descriptions seen so far, by (dev, ino), each valued by its file id.
    private var descriptions: [String: KcmpIndex<UInt32>] = [:]
    var pathIDs: [String: UInt32] = [:]
    private var pipesWithData: Set<UInt64> = []
    let unixSockets = UnixSocketDump()
    let terminals = TtyDump()
    let mqueues = MqueueDump()
    let kinds = FdKindsDump()
    let bpfMaps = BpfMapDump()
    let packets = PacketSocketDump()
    let netlink = NetlinkSocketDump()
    let inet: InetSocketDump

    init(inet: InetSocketDump) { self.inet = inet }

    deinit { for g in ghosts { close(g.fd) } }

    /// Character devices that carry no state of the description and exist on every machine,
    /// reopened by path: the console and virtual terminals too (their tty state is the
    /// device's, not the fd's), as CRIU reopens them.
    static let harmlessDevices: Set<String> = Set(["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/console"]
                                                  + (0...63).map { "/dev/tty\($0)" })

    func newID() -> UInt32 { defer { nextID += 1 }; return nextID }

    /// A regular file or directory by path (mapped files, exe, cwd, root): one entry per path.
    func pathEntry(_ path: String, flags: UInt32 = UInt32(O_RDONLY)) -> UInt32 {
        if let id = pathIDs[path] { return id }
        let id = newID()
        var reg = RegFileEntry()
        reg.id = id; reg.flags = flags; reg.pos = 0; reg.fown = FownEntry.none; reg.name = path
        var st = stat()
        if stat(path, &st) == 0 { reg.setSize(st); reg.mode = st.st_mode }
        var f = FileEntry()
        f.type = .reg; f.id = id; f.reg = reg
        files.append(f)
        pathIDs[path] = id
        return id
    }

    /// The memfd entry that mappings of memfd inode `inodeID` name (one per inode).
    func mappedMemfd(inodeID: UInt32) -> UInt32 {
        let key = "memfd-inode:\(inodeID)"
        if let id = pathIDs[key] { return id }
        let id = newID()
        var m = MemfdFileEntry()
        m.id = id; m.flags = UInt32(O_RDWR); m.pos = 0; m.fown = FownEntry.none; m.inodeID = inodeID
        var f = FileEntry()
        f.type = .memfd; f.id = id; f.memfd = m
        files.append(f)
        pathIDs[key] = id
        return id
    }

    /// The fd table of `pid`.
    func dump(pid: Int32) throws -> [FdinfoEntry] {
        try ProcTree.fds(of: pid).map { try dump(pid: pid, fd: $0) }
    }

    /// The file id of a description in flight that our own `fd` holds (SCM_RIGHTS peeked
    /// from a queue): the tree's entry when a task holds it too, else a new entry.
    func inFlight(_ fd: Int32) throws -> UInt32 {
        if let id = try description(heldAs: fd) { return id }
        var st = stat(), domain: Int32 = 0, len = socklen_t(4)
        let mode = fstat(fd, &st) == 0 ? st.st_mode & S_IFMT : 0
        let unix = mode == S_IFSOCK && getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX
        let what = (try? ProcTree.link("/proc/self/fd/\(fd)")) ?? "a file"
        // Kinds restored by the restorer alone; others need a task (epoll) or our process
        // would act on them as if it were their owner (TCP repair, the network lock).
        guard [S_IFREG, S_IFDIR, S_IFIFO].contains(mode) || unix || what == "anon_inode:[eventfd]",
              case let entry = try dump(pid: getpid(), fd: fd), [.reg, .pipe, .fifo, .unixsk, .eventfd].contains(entry.type) else {
            throw CheckpointError(.unsupported, "a file in flight (SCM_RIGHTS, \(what)) that only a UNIX socket's queue holds cannot be dumped: only files, pipes, FIFOs, UNIX sockets and eventfds can")
        }
        return entry.id
    }

    /// The entry of `pid`'s `fd`, adding its description to files.img when it is new.
    private func dump(pid: Int32, fd: Int32) throws -> FdinfoEntry {
        let where_ = "pid \(pid) fd \(fd)"
        let link = try ProcTree.link("/proc/\(pid)/fd/\(fd)")
        let info = try FdInfo.read(pid: pid, fd: fd)
        var st = stat()
        if stat("/proc/\(pid)/fd/\(fd)", &st) != 0 { throw CheckpointError.errno("stat \(where_) (\(link))") }
        let cloexec = info.flags & UInt32(O_CLOEXEC) != 0
        let flags = info.flags & ~UInt32(O_CLOEXEC)
        let key = "\(st.st_dev):\(st.st_ino)"
        var entry = FdinfoEntry()
        entry.fd = UInt32(fd)
        entry.flags = cloexec ? UInt32(FD_CLOEXEC) : 0
        // One kcmp search finds the description or makes room for it.
        let (id, isNew) = try descriptions[key, default: KcmpIndex(type: KcmpType.file)].value(of: .init(pid: pid, fd: fd)) { newID() }
        if !isNew {
            guard let shared = files.first(where: { $0.id == id }) else {
                throw CheckpointError(.invalidState, "\(where_): its description (file \(id)) is still being dumped")
            }
            entry.id = id
            entry.type = shared.type
            return entry
        }
        var file = FileEntry()
        file.id = id
        let mode = st.st_mode & S_IFMT
        if Self.isHarmless(st) { try Self.checkTerminalOutlivesTree(st, link: link, treeTids: kinds.treeTids, at: where_) }
        if let kind = try kindEntry(link: link, pid: pid, fd: fd, id: id, info: info, st: st) {
            file = kind
        } else if link.hasPrefix("pipe:[") {
            file.type = .pipe
            var p = PipeEntry()
            p.id = id; p.pipeID = UInt32(truncatingIfNeeded: st.st_ino); p.flags = flags; p.fown = FownEntry.none
            file.pipe = p
            if pipesWithData.insert(UInt64(st.st_ino)).inserted {
                pipeData.append(try Self.peekPipe(pid: pid, fd: fd, pipeID: p.pipeID))
            }
        } else if mode == S_IFIFO && link.hasPrefix("/") {
            file.type = .fifo
            let regID = newID()
            let deleted = Self.isDeleted(link, pid: pid, st: st)
            let path = deleted ? Self.deletedPath(link) : link
            files.append(regEntry(id: regID, path: path, flags: flags, pos: 0, st: st))
            if deleted { try remapDeleted(id: regID, pid: pid, source: "/proc/\(pid)/fd/\(fd)", path: path, st: st, mntID: Int32(info.mntId), at: where_) }
            var f = FifoEntry()
            f.id = id; f.pipeID = UInt32(truncatingIfNeeded: st.st_ino); f.regfID = regID
            file.fifo = f
            if pipesWithData.insert(UInt64(st.st_ino)).inserted {
                fifoData.append(try Self.peekPipe(pid: pid, fd: fd, pipeID: f.pipeID))
            }
        } else if mode == S_IFREG && MqueueDump.isMqueue(pid: pid, fd: fd) {
            file.type = .ext
            file.ext = try mqueues.dump(pid: pid, fd: fd, link: link, st: st, flags: flags, id: id)
        } else if link.hasPrefix("/") && (mode == S_IFREG || mode == S_IFDIR || Self.isHarmless(st)) && Self.isDeleted(link, pid: pid, st: st) {
            let path = Self.deletedPath(link)
            file.type = .reg
            file.reg = regEntry(id: id, path: path, flags: flags, pos: info.pos, st: st).reg
            file.reg.mntID = Int32(info.mntId)
            try remapDeleted(id: id, pid: pid, source: "/proc/\(pid)/fd/\(fd)", path: path, st: st, mntID: Int32(info.mntId), at: where_)
        } else if mode == S_IFCHR, let tty = try terminals.entries(pid: pid, fd: fd, path: link, st: st, flags: flags, id: id,
                                                                    regID: newID(), mntID: Int32(info.mntId)) {
            files.append(tty.reg)
            file = tty.tty
        } else if link.hasPrefix("/") && (mode == S_IFREG || mode == S_IFDIR || (mode == S_IFCHR && Self.harmlessDevices.contains(link))
                                          || (mode == S_IFLNK && Int32(bitPattern: flags) & OpenFlag.path != 0)) {
            file.type = .reg
            file.reg = regEntry(id: id, path: link, flags: flags, pos: info.pos, st: st).reg
            // The mount tells, at restore, whether the path is the tree's or the host's.
            file.reg.mntID = Int32(info.mntId)
        } else if link.hasPrefix("socket:["), let usk = try unixSockets.entry(pid: pid, fd: fd, ino: UInt32(truncatingIfNeeded: st.st_ino), id: id, flags: flags) {
            file.type = .unixsk; file.usk = usk
        } else if mode == S_IFSOCK, let psk = try packets.entry(pid: pid, fd: fd, ino: UInt32(truncatingIfNeeded: st.st_ino), id: id, flags: flags) {
            file.type = .packetsk; file.psk = psk
        } else if mode == S_IFSOCK, let nlsk = try netlink.entry(pid: pid, fd: fd, ino: UInt32(truncatingIfNeeded: st.st_ino), id: id, flags: flags) {
            file.type = .netlinksk; file.nlsk = nlsk
        } else if mode == S_IFSOCK, let isk = try inet.entry(pid: pid, fd: fd, id: id, flags: flags, inode: UInt64(st.st_ino)) {
            file.type = .inetsk
            file.isk = isk
        } else if let ns = Self.namespace(ofLink: link) {
            file = namespaceFile(kind: ns.kind, inode: ns.inode, id: id, flags: flags, at: where_)
        } else if mode == S_IFCHR {
            throw CheckpointError(.unsupported, "\(where_): character device \(link) is not supported: a reopened device may not have the state this one has (only /dev/null, zero, full, random, urandom, tty, console and tty0-63 are reopened)")
        } else {
            throw CheckpointError(.unsupported, "\(where_): \(link) is not supported yet")
        }
        if let fown = try FileOwner.dump(pid: pid, fd: fd, treeTids: kinds.treeTids, at: where_) {
            if file.type == .fifo, let i = files.firstIndex(where: { $0.id == file.fifo.regfID }) {
                files[i].owner = fown
            } else {
                file.owner = fown
            }
        }
        files.append(file)
        entry.id = id
        entry.type = file.type
        return entry
    }

    /// The file id of the description our own `fd` refers to, when a task of the tree holds it.
    func description(heldAs fd: Int32) throws -> UInt32? {
        var st = stat()
        if fstat(fd, &st) != 0 { throw CheckpointError.errno("fstat of a file in flight") }
        return try descriptions["\(st.st_dev):\(st.st_ino)"]?.find(.init(pid: getpid(), fd: fd))
    }

    private func regEntry(id: UInt32, path: String, flags: UInt32, pos: UInt64, st: stat) -> FileEntry {
        var reg = RegFileEntry()
        reg.id = id; reg.flags = flags; reg.pos = pos; reg.fown = FownEntry.none; reg.name = path
        reg.setSize(st); reg.mode = st.st_mode
        var f = FileEntry()
        f.type = .reg; f.id = id; f.reg = reg
        return f
    }

    static func deletedPath(_ link: String) -> String {
        link.hasSuffix(" (deleted)") ? String(link.dropLast(" (deleted)".count)) : link
    }

    /// The device numbers of harmlessDevices: a deleted node of one is made again.
    static let harmlessRdevs: Set<UInt64> = Set(harmlessDevices.compactMap { p in
        var st = stat()
        return stat(p, &st) == 0 ? UInt64(st.st_rdev) : nil
    })

    static func isHarmless(_ st: stat) -> Bool { st.st_mode & S_IFMT == S_IFCHR && harmlessRdevs.contains(UInt64(st.st_rdev)) }

    /// Whether the file behind `link` has no name left at its path: no links at all, or
    /// " (deleted)" and the path (in the task's root) is another inode or none.
    static func isDeleted(_ link: String, pid: Int32, st: stat) -> Bool {
        if st.st_nlink == 0 { return true }
        guard link.hasSuffix(" (deleted)") else { return false }
        var now = stat()
        let path = "/proc/\(pid)/root" + link.dropLast(" (deleted)".count)
        return stat(path, &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino
    }

    /// The unread bytes of a pipe, without consuming them: a second reader is opened
    /// through /proc and tee(2) copies the buffer into a pipe of our own.
    static func peekPipe(pid: Int32, fd: Int32, pipeID: UInt32) throws -> (PipeDataEntry, Data) {
        let src = open("/proc/\(pid)/fd/\(fd)", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if src < 0 { throw CheckpointError.errno("open pipe behind pid \(pid) fd \(fd)") }
        defer { close(src) }
        let size = fcntl(src, FileControl.getPipeSize)
        let ends = try Syscall.pipe("pipe2", flags: O_NONBLOCK)
        defer { close(ends[0]); close(ends[1]) }
        _ = fcntl(ends[1], FileControl.setPipeSize, size)
        let teed = Syscall.result(SyscallNumber.tee, Int(src), Int(ends[1]), Int(size), 2 /* SPLICE_F_NONBLOCK */)
        // An empty pipe answers EAGAIN: nothing to copy.
        let n = teed == .failure(.EAGAIN) ? 0 : try teed.get("tee pipe of pid \(pid) fd \(fd)")
        var data = Data()
        if n > 0 {
            var buf = [UInt8](repeating: 0, count: n)
            let got = read(ends[0], &buf, n)
            if got != n { throw CheckpointError.errno("read pipe copy of pid \(pid) fd \(fd)") }
            data = Data(buf)
        }
        var e = PipeDataEntry()
        e.pipeID = pipeID; e.bytes = UInt32(data.count); e.size = UInt32(size)
        return (e, data)
    }

    /// Whether regular files keep the id of their mount: only when the tree has a mount
    /// namespace of its own, as CRIU writes them (its restore looks the id up among the
    /// dumped mounts, and fails on a file of a host dump that names one).
    var recordMounts = true

    func write(to images: ImageDirectory) throws {
        files += try unixSockets.finish(newID: newID, fileID: inFlight)
        files += try inet.pendingEntries(newID: newID)
        if !recordMounts {
            for i in files.indices where files[i].hasReg { files[i].reg.clearMntID() }
        }
        try unixSockets.write(to: images)
        try images.write(.files, files)
        try terminals.write(to: images)
        try writeData(.pipesData, pipeData, images)
        try writeData(.fifoData, fifoData, images)
        try images.write(.remapFpath, remaps)
        try mqueues.write(to: images)
        try writeKinds(to: images)
        try inet.write(to: images)
        try writeGhosts(to: images)
    }

    private func writeData(_ image: ImageName, _ items: [(PipeDataEntry, Data)], _ images: ImageDirectory) throws {
        let w = try images.writer(image)
        for (e, d) in items { try w.append(e); try w.appendRaw(d) }
        try w.close()
    }
}

extension RegFileEntry {
    /// The size, for regular files only, as CRIU records it: its restore checks the size of
    /// what it opens, and a directory made again (a removed cwd) has another size.
    mutating func setSize(_ st: stat) {
        if st.st_mode & S_IFMT == S_IFREG { size = UInt64(st.st_size) }
    }
}

extension FownEntry {
    static var none: FownEntry {
        var f = FownEntry()
        f.uid = 0; f.euid = 0; f.signum = 0; f.pidType = 0; f.pid = 0
        return f
    }
}
