import Foundation
import LinuxKernel
import Images
import ProcFS

extension RestoredProcess {
    /// Before its children are forked (they inherit what it maps now): drops what the stub
    /// took from its parent but does not share with it, moves vdso/vvar to their dumped
    /// places, then maps and fills the private areas it shares with its parent or its
    /// children. In an area taken from the parent only the pages that differ are written,
    /// and the parent's pages this process has not are dropped, so the rest stays shared.
    /// `pidfd` is the restorer's pidfd as the stub inherited it.
    func prepareSharedMemory(_ plan: MemoryInheritance, resources: RestoreResources, pages: PagesImage, pidfd: Int32) throws {
        guard !image.isZombie else { return }
        let current = try ProcMaps.parse(maps: readProcFile("/proc/\(hostPid)/maps"))
        let own = current.filter { $0.start < Self.taskSize && ($0.isSpecial || ($0.start >= stub && $0.end <= stub + Self.stubSize)) }
        let inherited = plan.inherited(pid)
        try unmapAll(except: own.map { ($0.start, $0.end) } + inherited.map { ($0.start, $0.end) })
        let mine = try pages.saved(pid: pid, pagemap: image.pagemap, pagesID: image.pagesID)
        try placeVdso(own.filter(\.isSpecial), saved: mine)
        let early = plan.premapped(pid)
        guard !early.isEmpty else { return }
        let inheritedStarts = Set(inherited.map(\.start))
        let fresh = early.filter { !inheritedStarts.contains($0.start) }
        // Writable until the last step: each child forked from here writes its own pages.
        try mapAll(fresh.map { ($0, $0.prot | UInt32(PROT_WRITE)) }, fds: try areaFds(fresh, resources: resources, pages: pages, pidfd: pidfd))
        var pieces = mine.pieces(within: fresh.map { ($0.start, $0.end) })
        var drops: [(UInt64, UInt64)] = []
        if let parent = plan.parent(of: pid) {
            let theirs = try pages.saved(pid: parent.pid, pagemap: parent.pagemap, pagesID: parent.pagesID)
            for vma in inherited {
                let c = mine.changes(from: theirs, in: (vma.start, vma.end))
                pieces += c.write
                drops += c.drop
                plan.counted(compared: c.compared, same: c.same)
            }
        }
        try memory.scatterIn(pieces)
        for (start, end) in drops {
            try call("madvise(MADV_DONTNEED) \(start.hex)-\(end.hex)", SyscallNumber.madvise, start, end - start, UInt64(MADV_DONTNEED))
        }
    }

    /// Maps every dumped area not mapped before the fork at its address, copies the saved
    /// pages in, then gives every area its protection and madvise state.
    func buildMemory(resources: RestoreResources, pages: PagesImage, pidfd: Int32, plan: MemoryInheritance) throws {
        let vmas = image.mm.vmas
        let early = plan.premapped(pid)
        let earlyStarts = Set(early.map(\.start))
        let rest = vmas.filter { !earlyStarts.contains($0.start) }
        let saved = try pages.saved(pid: pid, pagemap: image.pagemap, pagesID: image.pagesID)
        let lazySink = resources.session.options.lazyPages
        let lazy = lazySink == nil ? [] : LazyAreas.areas(image, plan: plan)
        let lazyStarts = Set(lazy.map(\.start))
        try mapAreas(rest, pagemap: image.pagemap, fileFds: { try areaFds($0, resources: resources, pages: pages, pidfd: pidfd) },
                     attach: attachSysV, fill: {
            // The vdso's pages (CRIU saves them) stay out: the running kernel's vdso was moved there.
            let eager = rest.filter { (MemoryInheritance.isPrivate($0) || HugePages.isPrivate($0)) && !lazyStarts.contains($0.start) }
            try memory.scatterIn(saved.pieces(within: eager.map { ($0.start, $0.end) }))
        })
        try restoreAioRings(saved)
        var last = protection(of: early.filter { $0.prot & UInt32(PROT_WRITE) == 0 }) + advice(of: vmas) + guards(of: vmas)
        // Either way: the stub inherited the restorer's setting.
        if image.mm.hasThpDisabled {
            last.append(InjectedCall(what: "prctl(PR_SET_THP_DISABLE)", nr: SyscallNumber.prctl, args: [41, image.mm.thpDisabled ? 1 : 0, 0, 0, 0]))
        }
        try callAll(last)
        if let lazySink { try handOverLazyAreas(lazy, to: lazySink) }
    }

    /// The task's fds to map each of `vmas` from, taken in one batch: its shared memory
    /// object's or its file's (opened with the access the vma records, CRIU's fdflags, not
    /// the fd's); nil for anonymous memory.
    private func areaFds(_ vmas: [VmaEntry], resources: RestoreResources, pages: PagesImage, pidfd: Int32) throws -> [Int32?] {
        var ours: [(fd: Int32, owned: Bool)?] = []
        defer { for case let (fd, true)? in ours { close(fd) } }
        for vma in vmas {
            if vma.status & VmaStatus.anonShared != 0 {
                let size = image.mm.vmas.filter { $0.shmid == vma.shmid && $0.status & VmaStatus.anonShared != 0 && $0.status & VmaStatus.sysvIPC == 0 }
                    .map { Int($0.pgoff + $0.end - $0.start) }.max()!
                ours.append((try resources.shmemFd(vma.shmid, size: size, hugetlb: HugePages.mapFlags(vma.flags), pages: pages), false))
            } else if vma.status & (VmaStatus.filePrivate | VmaStatus.fileShared) != 0 {
                ours.append(try resources.mappingFd(for: vma))
            } else {
                ours.append(nil)
            }
        }
        var taken = try takeFds(ours.compactMap { $0?.fd }, pidfd: pidfd).makeIterator()
        return ours.map { $0 == nil ? nil : taken.next() }
    }

    /// The running kernel's vdso and vvar moved where the dumped ones were, or, when they
    /// cannot stand in for them (another kernel: other sizes or function offsets), a proxy.
    private func placeVdso(_ specials: [MemoryArea], saved: SavedPages) throws {
        let spare = spareAddress(specials: specials)
        if runningVdsoFits(saved) {
            do {
                return try moveSpecialAreas(current: specials, wanted: image.mm.vmas, spare: spare)
            } catch let e as CheckpointError where e.code == .unsupported {
                // vvar of another size: refused before anything moved.
            }
        }
        try proxyVdso(saved, specials: specials, spare: spare)
    }

    /// A place for moving vdso/vvar through that no dumped area, kept area or special
    /// area (where it is and where it goes) overlaps.
    private func spareAddress(specials: [MemoryArea]) -> UInt64 {
        let wanted = image.mm.vmas.filter { $0.status & (VmaStatus.vdso | VmaStatus.vvar) != 0 }
        let starts = specials.map(\.start) + wanted.map(\.start), ends = specials.map(\.end) + wanted.map(\.end)
        guard let low = starts.min(), let high = ends.max(), let first = specials.map(\.start).min(),
              let last = specials.map(\.end).max() else { return stub + Self.stubSize }
        let size = last - first
        let taken = image.mm.vmas.map { ($0.start, $0.end) } + [(low, high), (stub, stub + Self.stubSize)]
        var candidate = stub + Self.stubSize + 0x10_0000
        while let clash = taken.first(where: { $0.0 < candidate + size && $0.1 > candidate }) {
            candidate = (clash.1 + 0x10_0000) & ~UInt64(0xfff)
        }
        return candidate
    }

    /// A SysV segment attached again at its address; the segment itself exists already
    /// (restored with the IPC namespace, or still on the host).
    private func attachSysV(_ vma: VmaEntry) throws {
        guard vma.pgoff == 0 else {
            throw CheckpointError(.unsupported, "pid \(pid): SysV shm \(vma.shmid) is attached only in part at \(vma.start.hex)")
        }
        let flags = (vma.prot & UInt32(PROT_WRITE) == 0 ? ShmFlag.readOnly : 0) | (vma.prot & UInt32(PROT_EXEC) != 0 ? ShmFlag.exec : 0)
        let at = try call("shmat(\(vma.shmid)) at \(vma.start.hex)", SyscallNumber.shmat, vma.shmid, vma.start, UInt64(flags))
        if at != vma.start { throw CheckpointError(.invalidState, "pid \(pid): SysV shm \(vma.shmid) attached at \(at.hex), not \(vma.start.hex)") }
    }
}
