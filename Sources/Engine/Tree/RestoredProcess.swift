import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

/// One process being rebuilt. It starts as a stopped stub: a page of code (`syscall; int3`)
/// at `stub`, in a hole of the dumped layout, through which every syscall is injected.
final class RestoredProcess {
    let image: CheckpointImages.Process
    /// The pid in the tree's own namespace (what the images and injected syscalls use).
    var pid: Int32 { image.pid }
    /// The pid as the restorer sees it (what ptrace and /proc use).
    let hostPid: Int32
    let stub: UInt64
    static let stubSize: UInt64 = 65536
    /// Scratch data inside the stub for syscall arguments.
    var data: UInt64 { stub + 256 }
    private(set) var memory: RemoteMemory
    /// Threads created so far: (tid in the tree's namespace, tid as the restorer sees it).
    private(set) var threads: [(virtual: Int32, host: Int32)]

    init(image: CheckpointImages.Process, hostPid: Int32, stub: UInt64) throws {
        self.image = image
        self.hostPid = hostPid
        self.stub = stub
        memory = try RemoteMemory(pid: hostPid)
        threads = [(image.pid, hostPid)]
    }

    /// Injects a syscall into thread `tid` (a host tid; the main thread by default).
    @discardableResult
    func call(_ what: @autoclosure () -> String, on tid: Int32? = nil, _ nr: Int, _ args: UInt64...) throws -> UInt64 {
        let injector = try SyscallInjector(tid: tid ?? hostPid, codeAddress: stub)
        return try injector.call("\(what()) in pid \(pid)", nr, args: args)
    }

    func put(_ bytes: [UInt8], at offset: UInt64 = 0) throws -> UInt64 {
        try memory.write(data + offset, bytes)
        return data + offset
    }

    func put<T>(value: T, at offset: UInt64 = 0) throws -> UInt64 {
        var v = value
        return try put(withUnsafeBytes(of: &v) { Array($0) }, at: offset)
    }

    // MARK: - The stub's inheritance from the restorer

    /// Drops what the stub inherited from the restorer: its rseq registration, fds (but
    /// the restorer's pidfd, which every task of the tree inherits from here) and every
    /// mapping but the stub and the vdso/vvar areas (which are moved, not made).
    func cleanInheritance(keeping pidfd: Int32) throws {
        if let conf = try? Ptrace(hostPid).rseqConfiguration(), conf.rseq_abi_pointer != 0 {
            try call("rseq unregister", SyscallNumber.rseq, conf.rseq_abi_pointer, UInt64(conf.rseq_abi_size), 1, UInt64(conf.signature))
        }
        if pidfd > 0 { try call("close_range", SyscallNumber.closeRange, 0, UInt64(pidfd - 1), 0) }
        try call("close_range", SyscallNumber.closeRange, UInt64(pidfd + 1), UInt64(UInt32.max), 0)
        let keep = try ProcMaps.parse(maps: readProcFile("/proc/\(hostPid)/maps"))
            .filter { $0.start < Self.taskSize && ($0.isSpecial || ($0.start >= stub && $0.end <= stub + Self.stubSize)) }
            .map { ($0.start, $0.end) }.sorted { $0.0 < $1.0 }
        var cursor: UInt64 = 0
        for (start, end) in keep + [(Self.taskSize, Self.taskSize)] {
            if start > cursor { try call("munmap \(cursor.hex)-\(start.hex)", SyscallNumber.munmap, cursor, start - cursor) }
            cursor = max(cursor, end)
            if cursor >= Self.taskSize { break }
        }
    }

    static let taskSize: UInt64 = 0x7fff_ffff_f000

    // MARK: - Tree

    /// clone3 with set_tid inside this process: the child starts as a copy of this stub.
    /// Returns the child's pid as the restorer sees it.
    @discardableResult
    func createChild(pid child: Int32, thread: Bool = false) throws -> Int32 {
        // CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM
        let flags: UInt64 = thread ? 0x5_0f00 : 0
        let tidArray = try put(value: child, at: 512)
        var args = oc_clone_args()
        args.flags = flags
        args.exit_signal = thread ? 0 : UInt64(SIGCHLD)
        args.set_tid = tidArray
        args.set_tid_size = 1
        let argsAddr = try put(value: args, at: 0)
        let injector = try SyscallInjector(tid: hostPid, codeAddress: stub)
        let got: UInt64
        do {
            got = try injector.call("clone3 set_tid=\(child) in pid \(pid)", SyscallNumber.clone3, argsAddr, UInt64(MemoryLayout<oc_clone_args>.size))
        } catch let e as CheckpointError where e.message.contains("errno \(EEXIST))") {
            throw CheckpointError(.busy, "pid \(child) is in use: cannot restore a task with that pid")
        }
        guard Int32(truncatingIfNeeded: got) == child, let host = injector.newTasks.first else {
            throw CheckpointError(.invalidState, "clone3 in pid \(pid) made task \(got), wanted \(child)")
        }
        while true {
            guard let ev = try TaskEvent.wait(host) else { continue }
            if case .stopped = ev { break }
            throw CheckpointError(.invalidState, "new task \(child) did not stop after clone3 (\(ev))")
        }
        if thread { threads.append((child, host)) }
        return host
    }

    // MARK: - Memory

    /// Moves vvar, vvar_vclock and vdso to their dumped addresses, keeping their order.
    /// Adjacent vvar areas move as one block: CRIU's images hold them as one vma.
    func moveSpecialAreas() throws {
        let areas = try ProcMaps.parse(maps: readProcFile("/proc/\(hostPid)/maps"))
            .filter { $0.path == "[vdso]" || $0.path == "[vvar]" || $0.path == "[vvar_vclock]" }
            .sorted { $0.start < $1.start }
        var current: [[MemoryArea]] = []
        for area in areas {
            if area.path != "[vdso]", let last = current.last?.last, last.path != "[vdso]", last.end == area.start {
                current[current.count - 1].append(area)
            } else {
                current.append([area])
            }
        }
        var wanted: [(start: UInt64, end: UInt64)] = []
        for vma in image.mm.vmas.filter({ $0.status & (VmaStatus.vdso | VmaStatus.vvar) != 0 }).sorted(by: { $0.start < $1.start }) {
            if vma.status & VmaStatus.vvar != 0, let last = wanted.last, last.end == vma.start,
               image.mm.vmas.contains(where: { $0.end == vma.start && $0.status & VmaStatus.vvar != 0 }) {
                wanted[wanted.count - 1].end = vma.end
            } else {
                wanted.append((vma.start, vma.end))
            }
        }
        func size(_ block: [MemoryArea]) -> UInt64 { block.last!.end - block.first!.start }
        guard current.count == wanted.count, zip(current, wanted).allSatisfy({ size($0) == $1.end - $1.start }) else {
            throw CheckpointError(.unsupported, "pid \(pid): the vdso/vvar layout of this kernel (\(areas.map { "\($0.path) \($0.size)" })) differs from the dumped one")
        }
        if zip(current, wanted).allSatisfy({ $0.first!.start == $1.start }) { return }
        // Via a temporary place that overlaps neither the old nor the new addresses.
        let first = areas.first!.start
        let total = areas.last!.end - first
        var temp = stub + Self.stubSize + 0x10_0000
        let lowest = min(first, wanted.first!.start), highest = max(areas.last!.end, wanted.last!.end)
        if temp + total > lowest && temp < highest { temp = highest + 0x10_0000 }
        for area in areas {
            try call("mremap \(area.path)", SyscallNumber.mremap, area.start, area.size, area.size, 3 /* MREMAP_MAYMOVE|MREMAP_FIXED */, temp + (area.start - first))
        }
        for (block, target) in zip(current, wanted) {
            for area in block {
                let to = target.start + (area.start - block.first!.start)
                try call("mremap to \(to.hex)", SyscallNumber.mremap, temp + (area.start - first), area.size, area.size, 3 /* MREMAP_MAYMOVE|MREMAP_FIXED */, to)
            }
        }
    }

    /// Maps every dumped area at its address and copies the saved pages in.
    func buildMemory(resources: RestoreResources, pages: PagesImage, pidfd: Int32) throws {
        var writableForNow: [VmaEntry] = []
        for vma in image.mm.vmas where vma.status & (VmaStatus.vdso | VmaStatus.vvar | VmaStatus.vsyscall) == 0 {
            let len = vma.end - vma.start
            if vma.status & VmaStatus.sysvIPC != 0 {
                try attachSysV(vma)
                continue
            }
            var prot = vma.prot
            var flags = Int32(bitPattern: vma.flags) | MAP_FIXED
            var fd: UInt64 = UInt64.max
            var targetFd: Int32? = nil
            if vma.status & VmaStatus.anonShared != 0 {
                let size = image.mm.vmas.filter { $0.shmid == vma.shmid && $0.status & VmaStatus.anonShared != 0 && $0.status & VmaStatus.sysvIPC == 0 }
                    .map { Int($0.pgoff + $0.end - $0.start) }.max()!
                let ours = try resources.shmemFd(vma.shmid, size: size, pages: pages)
                targetFd = try takeFd(ours, pidfd: pidfd)
                flags &= ~MAP_ANONYMOUS
            } else if vma.status & (VmaStatus.filePrivate | VmaStatus.fileShared) != 0 {
                let (ours, owned) = try resources.mappingFd(for: vma)
                defer { if owned { close(ours) } }
                targetFd = try takeFd(ours, pidfd: pidfd)
            } else {
                flags |= MAP_ANONYMOUS
            }
            if let t = targetFd { fd = UInt64(t) }
            if vma.status & VmaStatus.anonShared == 0 && vma.prot & UInt32(PROT_WRITE) == 0 && hasPages(in: vma) {
                prot |= UInt32(PROT_WRITE)
                writableForNow.append(vma)
            }
            let offset = (vma.status & VmaStatus.anonPrivate != 0) ? 0 : vma.pgoff
            let got = try call("mmap \(vma.start.hex)-\(vma.end.hex)", SyscallNumber.mmap, vma.start, len, UInt64(prot), UInt64(UInt32(bitPattern: flags)), fd, offset)
            if got != vma.start { throw CheckpointError(.invalidState, "pid \(pid): mmap at \(vma.start.hex) landed at \(got.hex)") }
            if let t = targetFd { try call("close", SyscallNumber.close, UInt64(t)) }
        }
        try copyPages(pages)
        for vma in writableForNow {
            try call("mprotect \(vma.start.hex)", SyscallNumber.mprotect, vma.start, vma.end - vma.start, UInt64(vma.prot))
        }
    }

    /// A SysV segment attached again at its address; the segment itself exists already
    /// (restored with the IPC namespace, or still on the host).
    private func attachSysV(_ vma: VmaEntry) throws {
        guard vma.pgoff == 0 else {
            throw CheckpointError(.unsupported, "pid \(pid): SysV shm \(vma.shmid) is attached only in part at \(vma.start.hex)")
        }
        let flags = (vma.prot & UInt32(PROT_WRITE) == 0 ? 0o10000 /* SHM_RDONLY */ : 0) | (vma.prot & UInt32(PROT_EXEC) != 0 ? 0o100000 /* SHM_EXEC */ : 0)
        let at = try call("shmat(\(vma.shmid)) at \(vma.start.hex)", 30 /* shmat */, vma.shmid, vma.start, UInt64(flags))
        if at != vma.start { throw CheckpointError(.invalidState, "pid \(pid): SysV shm \(vma.shmid) attached at \(at.hex), not \(vma.start.hex)") }
    }

    private func hasPages(in vma: VmaEntry) -> Bool {
        image.pagemap.contains { $0.vaddr < vma.end && $0.vaddr + $0.nrPages * 4096 > vma.start }
    }

    /// The saved pages, in pagemap order; pages of the vdso (CRIU saves them) are skipped:
    /// the running kernel's vdso is what was moved there.
    private func copyPages(_ pages: PagesImage) throws {
        guard !image.pagemap.isEmpty, let base = try pages.base(image.pagesID) else { return }
        let vdso = image.mm.vmas.filter { $0.status & (VmaStatus.vdso | VmaStatus.vvar) != 0 }
        var offset = 0, runStart = 0
        var ranges: [(UInt64, Int)] = []
        for e in image.pagemap {
            let len = Int(e.nrPages) * 4096
            if vdso.contains(where: { e.vaddr < $0.end && e.vaddr + UInt64(len) > $0.start }) {
                if !ranges.isEmpty { try memory.copyIn(ranges, from: base + runStart) }
                ranges = []
                runStart = offset + len
            } else {
                ranges.append((e.vaddr, len))
            }
            offset += len
        }
        if !ranges.isEmpty { try memory.copyIn(ranges, from: base + runStart) }
    }

    // MARK: - Files

    /// Our fd `ours` as a new fd in this process (lowest free number); the caller closes it.
    func takeFd(_ ours: Int32, pidfd: Int32) throws -> Int32 {
        Int32(truncatingIfNeeded: try call("pidfd_getfd \(ours)", SyscallNumber.pidfdGetfd, UInt64(pidfd), UInt64(ours), 0))
    }

    /// The restorer's pidfd (inherited at `inherited`), moved above every fd the image
    /// uses. It works from inside a new pid namespace, where the restorer has no pid.
    func placeRestorerPidfd(inherited: Int32) throws -> Int32 {
        let high = (image.fds.map { Int32($0.fd) }.max() ?? 2) + 1
        let moved = Int32(truncatingIfNeeded: try call("fcntl F_DUPFD_CLOEXEC", SyscallNumber.fcntl, UInt64(inherited), UInt64(F_DUPFD_CLOEXEC), UInt64(max(high, inherited + 1))))
        try call("close", SyscallNumber.close, UInt64(inherited))
        return moved
    }

    func installFiles(resources: RestoreResources, pidfd: Int32) throws {
        for e in image.fds {
            let ours = try resources.fd(for: e.id)
            let t = try takeFd(ours, pidfd: pidfd)
            let cloexec = e.flags & UInt32(FD_CLOEXEC) != 0
            if t == Int32(e.fd) {
                if !cloexec { try call("fcntl F_SETFD", SyscallNumber.fcntl, UInt64(t), UInt64(F_SETFD), 0) }
            } else {
                try call("dup3 to fd \(e.fd)", SyscallNumber.dup3, UInt64(t), UInt64(e.fd), cloexec ? UInt64(O_CLOEXEC) : 0)
                try call("close", SyscallNumber.close, UInt64(t))
            }
        }
        try registerEpollTargets(resources: resources)
        let cwd = try takeFd(try resources.fd(for: image.fs.cwdID), pidfd: pidfd)
        if let root = resources.images.files[image.fs.rootID], root.reg.name != "/" {
            let r = try takeFd(try resources.fd(for: image.fs.rootID), pidfd: pidfd)
            try call("fchdir root", SyscallNumber.fchdir, UInt64(r))
            try call("chroot", SyscallNumber.chroot, try put(Array(".".utf8) + [0], at: 1024))
            try call("close", SyscallNumber.close, UInt64(r))
        }
        try call("fchdir cwd", SyscallNumber.fchdir, UInt64(cwd))
        try call("close", SyscallNumber.close, UInt64(cwd))
        try call("umask", SyscallNumber.umask, UInt64(image.fs.umask))
        try restoreFileLocks(resources.images.fileLocks)
    }
}
