import Foundation
import LinuxKernel
import CShim
import Images

/// Open files, pipes and shared memory objects, made once in the restorer's own process.
/// Restored tasks take them with pidfd_getfd(2), so an open file description shared by
/// several fds or processes before the dump is shared again after it.
final class RestoreResources {
    private(set) var fds: [UInt32: Int32] = [:]       // file id -> our fd
    private(set) var shmemFds: [UInt64: Int32] = [:]  // shmid -> our fd on the shmem object
    private lazy var pipes = PipeRestore(pipes: images.pipeData, fifos: images.fifoData)
    private var mappings: [(UnsafeMutableRawPointer, Int)] = []
    /// Our O_PATH fds on deleted files made again (ghost id -> fd), and the links the dump
    /// made (--link-remap): closed and removed by finishFiles.
    var ghostAnchors: [UInt32: Int32] = [:]
    var linkRemapPaths: Set<String> = []
    let kinds = FdKindsRestore()
    let images: CheckpointImages
    /// A restored task in the tree's namespaces (the root), for what is made inside them.
    private(set) lazy var mqueues = MqueueRestore(images: images)
    /// Files the caller supplies instead of the dumped ones, by key ("pipe:[INO]" or a path).
    private let inherited: [String: Int32]
    let terminals: TtyRestore
    let inet: InetSocketRestore
    let session: RestoreSession

    init(session: RestoreSession, images: CheckpointImages) throws {
        self.session = session
        self.images = images
        inherited = session.options.inheritFds
        inet = InetSocketRestore(images: images)
        inet.allowEstablished = session.options.tcpEstablished
        inet.closeConnections = session.options.tcpClose
        inet.lockMethod = session.options.networkLock
        terminals = try TtyRestore(images: images, session: session)
        // Message queues made in the tree's ipc namespace outlive its tasks.
        session.onRollBack { [weak self] in self?.mqueues.removeCreated(); self?.removeDeletedNames() }
        session.onRollBack { [weak self] in if let self { self.inet.unlockAfterFailure(log: self.session.log) } }
    }

    /// The restored tree's own root (a task's /proc/PID/root) when it has a mount
    /// namespace of its own: the images' paths are relative to it, not to ours.
    private var rootDir: Int32 = -1
    /// The restored root task (host pid): sockets are made in its network namespace.
    var rootPid: Int32 { session.rootPid != 0 ? session.rootPid : getpid() }
    private lazy var unixSockets = UnixSocketRestore(images: images)
    private(set) var rootPath = ""

    /// Mount ids of the tree's own mounts (mountpoints-N.img): a file on any other mount
    /// was the host's (a container's stdout file, say) and is opened on the host.
    private var treeMounts: Set<Int32> = []

    func resolvePaths(inRootOf pid: Int32) throws {
        for name in images.dir.list(.mountpoints) {
            treeMounts.formUnion(try images.dir.read(name, as: MntEntry.self).map { Int32(bitPattern: $0.mntID) })
        }
        rootPath = "/proc/\(pid)/root"
        rootDir = open(rootPath, OpenFlag.path | O_DIRECTORY | O_CLOEXEC)
        if rootDir < 0 { throw CheckpointError.errno("open the root of restored pid \(pid)") }
    }

    /// open(2) of an image path, resolved inside the tree's root (symlinks included),
    /// unless the file was on a mount outside the tree.
    func openPath(_ path: String, _ flags: Int32, _ mode: mode_t = 0, mount: Int32? = nil) -> Int32 {
        guard rootDir >= 0, mount.map({ treeMounts.contains($0) }) ?? true else { return open(path, flags, mode) }
        switch Syscall.openat2(rootDir, path, flags: flags, mode: mode, resolve: ResolveFlag.inRoot) {
        case .success(let fd): return fd
        case .failure(let err): errno = err.rawValue; return -1
        }
    }

    deinit {
        if rootDir >= 0 { close(rootDir) }
        for fd in fds.values { close(fd) }
        for fd in shmemFds.values { close(fd) }
        for (p, n) in mappings { munmap(p, n) }
    }

    /// Our fd for file `id`, opened on first use.
    func fd(for id: UInt32) throws -> Int32 {
        if let fd = fds[id] { return fd }
        guard let file = images.files[id] else { throw CheckpointError(.image, "files.img: no file with id \(id)") }
        let key = file.type == .pipe ? "pipe:[\(file.pipe.pipeID)]" : file.type == .reg ? file.reg.name : ""
        if let given = inherited[key] {
            let fd = fcntl(given, F_DUPFD_CLOEXEC, 0)
            if fd < 0 { throw CheckpointError.errno("inherited fd \(given) for \(key)") }
            fds[id] = fd
            return fd
        }
        let fd: Int32
        switch file.type {
        case .reg: fd = try openRegular(file.reg, ghost: images.ghosts[id])
        case .pipe: fd = try pipes.end(file.pipe)
        case .fifo: fd = try openFifo(file.fifo)
        case .inetsk: fd = try inet.open(file.isk)
        case .packetsk: fd = try PacketSocketRestore.open(file.psk, rootPid: rootPid)
        case .netlinksk: fd = try NetlinkSocketRestore.open(file.nlsk, rootPid: rootPid)
        case .unixsk: fd = try unixSockets.fd(for: id, rootPid: rootPid, rootDir: rootDir, files: self.fd(for:))
        case .tty:
            let fd = try terminals.fd(for: id) { self.openPath($0, $1) }
            try noteOwner(of: file, fd: fd)
            return fd
        case .ext: fd = try mqueues.open(id, namespaceOf: rootPid)
        default: fd = try openKind(file)
        }
        fds[id] = fd
        try noteOwner(of: file, fd: fd)
        return fd
    }

    /// open(2) takes O_ASYNC without arming it; restoreOwners sets it with F_SETFL.
    private static let openOnly = UInt32(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC | O_ASYNC)

    private func openRegular(_ reg: RegFileEntry, ghost: GhostFile?) throws -> Int32 {
        // O_NOCTTY: a terminal reopened by path must not become the restorer's ctty.
        let flags = Int32(bitPattern: reg.flags & ~Self.openOnly) | O_CLOEXEC | O_NOCTTY
        let fd: Int32
        if let ghost {
            fd = open(try ghostPath(ghost, name: reg.name), flags)
        } else {
            // A link made for a deleted file is in the tree's root, whatever mount it was on.
            let remapped = linkRemapPath(for: reg.id)
            fd = openPath(remapped ?? reg.name, flags, mount: reg.hasMntID && remapped == nil ? reg.mntID : nil)
        }
        if fd < 0 { throw CheckpointError.errno("open \(reg.name)") }
        if reg.pos != 0 && lseek(fd, off_t(reg.pos), SEEK_SET) < 0 {
            close(fd)
            throw CheckpointError.errno("seek \(reg.name) to \(reg.pos)")
        }
        return fd
    }

    private func openFifo(_ f: FifoEntry) throws -> Int32 {
        guard let regFile = images.files[f.regfID], regFile.type == .reg else {
            throw CheckpointError(.image, "files.img: FIFO \(f.id) names no path entry")
        }
        if let ghost = images.ghosts[f.regfID] {
            return try pipes.fifo(f, regFile.reg, at: try ghostPath(ghost, name: regFile.reg.name)) { open($0, $1) }
        }
        return try pipes.fifo(f, regFile.reg, at: linkRemapPath(for: f.regfID) ?? regFile.reg.name) { self.openPath($0, $1) }
    }

    /// Our fd on a new shared memory object for `shmid`, `size` bytes, filled from its
    /// pagemap. Opened through map_files, it is the same kind of object as MAP_SHARED|MAP_ANONYMOUS
    /// (with `hugetlb`, MAP_HUGETLB and its size bits, on the kernel's hugetlbfs again).
    func shmemFd(_ shmid: UInt64, size: Int, hugetlb: UInt32 = 0, pages: PagesImage) throws -> Int32 {
        if let fd = shmemFds[shmid] { return fd }
        if let fd = try memfdObject(shmid: shmid) { return fd }
        let flags = MAP_SHARED | MAP_ANONYMOUS | Int32(bitPattern: hugetlb)
        guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, flags, -1, 0), base != MAP_FAILED else {
            throw CheckpointError.errno("mmap \(size) bytes of shared memory for shmid \(shmid)")
        }
        mappings.append((base, size))
        if let s = images.shmem[shmid] {
            var offset = 0
            for run in s.runs {
                let len = Int(run.nrPages) * 4096
                guard Int(run.vaddr) + len <= size else {
                    throw CheckpointError(.image, "\(ImageName.pagemapShmem(shmid)): run at \(run.vaddr) beyond the object's \(size) bytes")
                }
                try pages.copy(id: s.pagesID, offset: offset, count: len, to: base + Int(run.vaddr))
                offset += len
            }
        }
        let start = UInt(bitPattern: base), end = start + UInt(size)
        let fd = open("/proc/self/map_files/\(String(start, radix: 16))-\(String(end, radix: 16))", O_RDWR | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open map_files of shared memory for shmid \(shmid)") }
        shmemFds[shmid] = fd
        return fd
    }
}

/// The pages-N.img files, mapped read-only: restored memory is copied from the page cache
/// straight into the task.
final class PagesImage {
    private var maps: [UInt32: (UnsafeRawPointer, Int)] = [:]
    let dir: ImageDirectory
    /// The parent images' pages (an incremental dump), opened on first use and read in as
    /// this one is (populating a lazy restore's parents read every page it left out).
    lazy var parent: PagesImage? = dir.parentImages.map { PagesImage(dir: $0, populate: populate) }
    /// Read in at once (MAP_POPULATE); a lazy restore reads only what it writes itself.
    private let populate: Bool

    init(dir: ImageDirectory, populate: Bool = true) {
        self.dir = dir
        self.populate = populate
    }

    deinit { for (p, n) in maps.values { munmap(UnsafeMutableRawPointer(mutating: p), n) } }

    func base(_ id: UInt32) throws -> UnsafeRawPointer? {
        if let m = maps[id] { return m.0 }
        let path = dir.file(.pages(id))
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open \(path)") }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        if st.st_size == 0 { return nil }
        guard let p = mmap(nil, Int(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw CheckpointError.errno("mmap \(path)")
        }
        if populate { Self.readIn(p, count: Int(st.st_size)) }
        maps[id] = (UnsafeRawPointer(p), Int(st.st_size))
        return UnsafeRawPointer(p)
    }

    /// Maps every page of [p, p + count) on all cores at once (MADV_POPULATE_READ by 2 MiB
    /// pieces): one thread maps 128 MiB of tmpfs pages in ~13 ms, two in ~7. Where the
    /// kernel cannot (before 5.14) the copy faults them in instead.
    private static func readIn(_ p: UnsafeMutableRawPointer, count: Int) {
        let piece = 2 << 20
        let pieces = (count + piece - 1) / piece
        guard pieces > 1 else { _ = madvise(p, count, 22 /* MADV_POPULATE_READ */); return }
        let workers = min(ProcessInfo.processInfo.activeProcessorCount, pieces)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let first = pieces * w / workers, end = pieces * (w + 1) / workers
            let start = first * piece
            _ = madvise(p + start, min(end * piece, count) - start, 22 /* MADV_POPULATE_READ */)
        }
    }

    func copy(id: UInt32, offset: Int, count: Int, to destination: UnsafeMutableRawPointer) throws {
        guard let b = try base(id) else { throw CheckpointError(.image, "\(ImageName.pages(id)) is empty") }
        destination.copyMemory(from: b + offset, byteCount: count)
    }
}
