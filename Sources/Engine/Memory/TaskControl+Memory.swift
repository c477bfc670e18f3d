import Foundation
import LinuxKernel
import Images
import ProcFS

/// The memory syscalls a restore injects into a stub, decided from the images alone:
/// written against TaskControl so that a recording double shows them (Tests/EngineTests).
extension TaskControl {
    /// Unmaps everything below the task size but `keep` (start, end).
    func unmapAll(except keep: [(UInt64, UInt64)]) throws {
        let taskSize = RestoredProcess.taskSize
        var cursor: UInt64 = 0
        var calls: [InjectedCall] = []
        for (start, end) in keep.sorted(by: { $0.0 < $1.0 }) + [(taskSize, taskSize)] {
            if start > cursor { calls.append(InjectedCall(what: "munmap \(cursor.hex)-\(start.hex)", nr: SyscallNumber.munmap, args: [cursor, start - cursor])) }
            cursor = max(cursor, end)
            if cursor >= taskSize { break }
        }
        try callAll(calls)
    }

    /// Maps every dumped area (but vdso, vvar, vsyscall) at its address. An area that is
    /// not writable but has pages is mapped writable, filled by `fill`, then given its
    /// protection. `fileFds(vmas)` are the task's fds to map each file or shared area from
    /// (nil for anonymous memory; closed here after the mmaps); `attach(vma)` re-attaches
    /// a SysV segment.
    func mapAreas(_ vmas: [VmaEntry], pagemap: [PagemapEntry], fileFds: ([VmaEntry]) throws -> [Int32?],
                  attach: (VmaEntry) throws -> Void, fill: () throws -> Void) throws {
        var writableForNow: [VmaEntry] = []
        var areas: [(vma: VmaEntry, prot: UInt32)] = []
        for vma in vmas where vma.status & (VmaStatus.vdso | VmaStatus.vvar | VmaStatus.vsyscall | VmaStatus.guardRegion | VmaStatus.aioRing) == 0 {
            if vma.status & VmaStatus.sysvIPC != 0 {
                try attach(vma)
                continue
            }
            var prot = vma.prot
            let hasPages = pagemap.contains { $0.vaddr < vma.end && $0.vaddr + $0.nrPages * 4096 > vma.start }
            if vma.status & VmaStatus.anonShared == 0 && vma.prot & UInt32(PROT_WRITE) == 0 && hasPages {
                prot |= UInt32(PROT_WRITE)
                writableForNow.append(vma)
            }
            areas.append((vma, prot))
        }
        try mapAll(areas, fds: try fileFds(areas.map(\.vma)))
        try fill()
        try protect(writableForNow)
    }

    /// Gives each area its dumped protection.
    func protect(_ vmas: [VmaEntry]) throws { try callAll(protection(of: vmas)) }

    func protection(of vmas: [VmaEntry]) -> [InjectedCall] {
        vmas.map { InjectedCall(what: "mprotect \($0.start.hex)", nr: SyscallNumber.mprotect, args: [$0.start, $0.end - $0.start, UInt64($0.prot)]) }
    }

    /// Each area at its address with its protection, from the task's fd (closed here) or
    /// anonymous where there is none; all in one batch, none depends on another.
    func mapAll(_ areas: [(vma: VmaEntry, prot: UInt32)], fds: [Int32?]) throws {
        var calls: [(nr: Int, args: [UInt64])] = []
        var what: [String] = []
        for ((vma, prot), targetFd) in zip(areas, fds) {
            var flags = Int32(bitPattern: vma.flags) | MAP_FIXED
            if vma.status & VmaStatus.anonShared != 0 {
                flags &= ~MAP_ANONYMOUS
            } else if targetFd == nil {
                flags |= MAP_ANONYMOUS
            }
            let offset = (vma.status & VmaStatus.anonPrivate != 0) ? 0 : vma.pgoff
            let fd = targetFd.map { UInt64($0) } ?? UInt64.max
            calls.append((SyscallNumber.mmap, [vma.start, vma.end - vma.start, UInt64(prot), UInt64(UInt32(bitPattern: flags)), fd, offset]))
            what.append("mmap \(vma.start.hex)-\(vma.end.hex)")
            if let t = targetFd {
                calls.append((SyscallNumber.close, [UInt64(t)]))
                what.append("close")
            }
        }
        let results = try askAll({ what[$0] }, calls)
        for (c, got) in zip(calls, results) where c.nr == SyscallNumber.mmap && got != c.args[0] {
            throw CheckpointError(.invalidState, "pid \(pid): mmap at \(c.args[0].hex) landed at \(got.hex)")
        }
    }

    /// MADV_GUARD_INSTALL over each guard range, once its area is mapped and filled.
    func guards(of vmas: [VmaEntry]) -> [InjectedCall] {
        vmas.filter { $0.status & VmaStatus.guardRegion != 0 }.map { vma in
            InjectedCall(what: "madvise(MADV_GUARD_INSTALL) \(vma.start.hex)-\(vma.end.hex)", nr: SyscallNumber.madvise, args: [vma.start, vma.end - vma.start, 102])
        }
    }

    /// The madvise state of each area (vma.madv: bit N for advice N, as CRIU keeps it),
    /// given once every child that must not inherit an area (MADV_DONTFORK) exists.
    func advice(of vmas: [VmaEntry]) -> [InjectedCall] {
        var calls: [InjectedCall] = []
        for vma in vmas where vma.madv != 0 && vma.status & (VmaStatus.vdso | VmaStatus.vvar | VmaStatus.vsyscall) == 0 {
            for advice in 0..<64 where vma.madv & (1 << UInt64(advice)) != 0 {
                calls.append(InjectedCall(what: "madvise(\(advice)) \(vma.start.hex)-\(vma.end.hex)", nr: SyscallNumber.madvise, args: [vma.start, vma.end - vma.start, UInt64(advice)]))
            }
        }
        return calls
    }

    /// Moves vvar, vvar_vclock and vdso (`current`, as the task's maps show them) to their
    /// dumped addresses through a temporary place at or above `spare` that overlaps neither
    /// the old nor the new addresses; unmaps those the program had unmapped.
    func moveSpecialAreas(current unsorted: [MemoryArea], wanted vmas: [VmaEntry], spare: UInt64) throws {
        let areas = unsorted.filter { $0.path == "[vdso]" || $0.path == "[vvar]" || $0.path == "[vvar_vclock]" }
            .sorted { $0.start < $1.start }
        // vvar and vvar_vclock move as one block: CRIU records them as one vvar area.
        var current: [[MemoryArea]] = []
        for area in areas {
            if area.path != "[vdso]", let last = current.last?.last, last.path != "[vdso]", last.end == area.start {
                current[current.count - 1].append(area)
            } else {
                current.append([area])
            }
        }
        var wanted: [(start: UInt64, end: UInt64, vdso: Bool)] = []
        for vma in vmas.filter({ $0.status & (VmaStatus.vdso | VmaStatus.vvar) != 0 }).sorted(by: { $0.start < $1.start }) {
            if vma.status & VmaStatus.vvar != 0, let last = wanted.last, last.end == vma.start,
               vmas.contains(where: { $0.end == vma.start && $0.status & VmaStatus.vvar != 0 }) {
                wanted[wanted.count - 1].end = vma.end
            } else {
                wanted.append((vma.start, vma.end, vma.status & VmaStatus.vdso != 0))
            }
        }
        // Paired by kind, whatever their order: a program may have moved either.
        func size(_ block: [MemoryArea]) -> UInt64 { block.last!.end - block.first!.start }
        let pairs = current.compactMap { block in wanted.first { $0.vdso == (block[0].path == "[vdso]") }.map { (block, $0) } }
        guard pairs.count == wanted.count, Set(wanted.map(\.vdso)).count == wanted.count,
              pairs.allSatisfy({ size($0.0) == $0.1.end - $0.1.start }) else {
            throw CheckpointError(.unsupported, "pid \(pid): the vdso/vvar layout of this kernel (\(areas.map { "\($0.path) \($0.size)" })) differs from the dumped one")
        }
        // What the program had unmapped goes again.
        try callAll(current.filter { block in !pairs.contains(where: { $0.0[0].start == block[0].start }) }.map { block in
            InjectedCall(what: "munmap \(block[0].path)", nr: SyscallNumber.munmap, args: [block[0].start, size(block)])
        })
        if pairs.allSatisfy({ $0.0.first!.start == $0.1.start }) { return }
        let moving = pairs.flatMap(\.0)
        guard let first = moving.first, let last = moving.last, let firstWanted = wanted.map(\.start).min(),
              let lastWanted = wanted.map(\.end).max() else { return }
        // Via a temporary place that overlaps neither the old nor the new addresses.
        let total = last.end - first.start
        var temp = spare
        let lowest = min(first.start, firstWanted), highest = max(last.end, lastWanted)
        if temp + total > lowest && temp < highest { temp = highest + 0x10_0000 }
        var moves = moving.map { area in
            InjectedCall(what: "mremap \(area.path)", nr: SyscallNumber.mremap,
                         args: [area.start, area.size, area.size, UInt64(MremapFlag.mayMoveFixed), temp + (area.start - first.start)])
        }
        for (block, target) in pairs {
            for area in block {
                let to = target.start + (area.start - block.first!.start)
                moves.append(InjectedCall(what: "mremap to \(to.hex)", nr: SyscallNumber.mremap,
                                          args: [temp + (area.start - first.start), area.size, area.size, UInt64(MremapFlag.mayMoveFixed), to]))
            }
        }
        try callAll(moves)
    }
}
