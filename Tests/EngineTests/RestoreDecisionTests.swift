import Foundation
import Testing
import LinuxKernel
import Images
import ProcFS
@testable import Engine

/// What a restore injects into a stub, read off a recording task: the decisions of
/// Restorer's steps without a process (the workloads prove the same on real ones).
@Suite("restore decisions, through a recording task")
struct RestoreDecisionTests {
    // CRIU's VMA_AREA_* status bits (criu/include/image.h), spelled here on purpose.
    static let vdso: UInt32 = 1 << 3, filePrivate: UInt32 = 1 << 6, anonShared: UInt32 = 1 << 8
    static let anonPrivate: UInt32 = 1 << 9, sysvIPC: UInt32 = 1 << 10, vvar: UInt32 = 1 << 12, regular: UInt32 = 1

    static func vma(_ start: UInt64, _ end: UInt64, prot: Int32, flags: Int32 = MAP_PRIVATE | MAP_ANONYMOUS,
                    status: UInt32 = regular | anonPrivate, pgoff: UInt64 = 0, shmid: UInt64 = 0) -> VmaEntry {
        var v = VmaEntry()
        v.start = start; v.end = end; v.prot = UInt32(prot); v.flags = UInt32(bitPattern: flags)
        v.status = status; v.pgoff = pgoff; v.shmid = shmid
        return v
    }

    static func pages(_ vaddr: UInt64, _ count: UInt64) -> PagemapEntry {
        var p = PagemapEntry()
        p.vaddr = vaddr; p.nrPages = count
        return p
    }

    @Test("sigactions: only those that differ from the inherited ones are set, each as dumped")
    func sigactions() throws {
        let task = RecordingTask()
        var acts: [[UInt64]] = []
        task.kernel = { call, t in if call.nr == SyscallNumber.rtSigaction { acts.append(t.words(call.args[1], 4)) } }
        var dumped = RestoredProcess.dumpedSignals.map { _ in SaEntry() }
        for i in dumped.indices { dumped[i].sigaction = 0; dumped[i].flags = 0; dumped[i].restorer = 0; dumped[i].mask = 0 }
        // SIGINT (index 1) handled; SIGTERM (index 13, after SIGKILL is skipped) ignored.
        dumped[1].sigaction = 0x401000; dumped[1].flags = 0x0400_0004; dumped[1].restorer = 0x402000; dumped[1].mask = 1 << 9
        dumped[13].sigaction = 1
        try task.setSigactions(dumped) { _ in [0, 0, 0, 0] }
        #expect(task.calls.map { $0.args[0] } == [UInt64(SIGINT), UInt64(SIGTERM)])
        #expect(task.calls.allSatisfy { $0.nr == SyscallNumber.rtSigaction && $0.args[2] == 0 && $0.args[3] == 8 })
        #expect(acts == [[0x401000, 0x0400_0004, 0x402000, 1 << 9], [1, 0, 0, 0]])
        // The same actions inherited: nothing to do.
        let again = RecordingTask()
        try again.setSigactions(dumped) { sig in
            let i = RestoredProcess.dumpedSignals.firstIndex(of: sig)!
            return [dumped[i].sigaction, dumped[i].flags, dumped[i].restorer, dumped[i].mask]
        }
        #expect(again.calls.isEmpty)
    }

    @Test("itimers: disarmed ones are left alone, a pending periodic one is armed one interval ahead")
    func itimers() throws {
        let task = RecordingTask()
        var values: [[UInt64]] = []
        task.kernel = { call, t in values.append(t.words(call.args[1], 4)) }
        var timers = TaskTimersEntry()
        var real = ItimerEntry(); real.isec = 0; real.iusec = 0; real.vsec = 3; real.vusec = 500
        var virt = ItimerEntry(); virt.isec = 0; virt.iusec = 0; virt.vsec = 0; virt.vusec = 0
        var prof = ItimerEntry(); prof.isec = 1; prof.iusec = 250; prof.vsec = 0; prof.vusec = 0
        timers.real = real; timers.virt = virt; timers.prof = prof
        try task.setItimers(timers)
        #expect(task.numbers == [SyscallNumber.setitimer, SyscallNumber.setitimer])
        #expect(task.calls.map { $0.args[0] } == [0 /* ITIMER_REAL */, 2 /* ITIMER_PROF */])
        #expect(task.calls.allSatisfy { $0.args[2] == 0 })
        #expect(values == [[0, 0, 3, 500], [1, 250, 1, 250]])
    }

    @Test("rlimits: only those that differ from the inherited ones, set by the task on itself")
    func rlimits() throws {
        let task = RecordingTask()
        var limits: [[UInt64]] = []
        task.kernel = { call, t in limits.append(t.words(call.args[2], 2)) }
        let inherited: [(cur: UInt64, max: UInt64)] = (0..<16).map { _ in (UInt64.max, UInt64.max) }
        let dumped: [RlimitEntry] = (0..<16).map { res in
            var e = RlimitEntry()
            e.cur = res == 7 ? 1024 : UInt64.max   // RLIMIT_NOFILE
            e.max = res == 7 ? 4096 : UInt64.max
            return e
        }
        try task.setRlimits(dumped, inherited: inherited)
        #expect(task.calls == [.init(tid: nil, nr: SyscallNumber.prlimit64, args: [0, 7, task.data, 0, 0, 0])])
        #expect(limits == [[1024, 4096]])
        // Nothing known about the stub's limits: every one is set.
        let all = RecordingTask()
        try all.setRlimits(dumped, inherited: [])
        #expect(all.calls.map { $0.args[1] } == (0..<16).map { UInt64($0) })
    }

    @Test("a read-only area with pages is mapped writable, filled, then given its protection")
    func readOnlyAreaWithPages() throws {
        let task = RecordingTask()
        let ro = Self.vma(0x10000, 0x13000, prot: PROT_READ)
        let empty = Self.vma(0x20000, 0x21000, prot: PROT_READ)
        try task.mapAreas([ro, empty], pagemap: [Self.pages(0x11000, 1)], fileFds: { $0.map { _ in nil } }, attach: { _ in },
                          fill: { task.mark("fill") })
        let flags = UInt64(UInt32(bitPattern: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED))
        #expect(task.calls == [
            .init(tid: nil, nr: SyscallNumber.mmap, args: [0x10000, 0x3000, UInt64(PROT_READ | PROT_WRITE), flags, UInt64.max, 0]),
            .init(tid: nil, nr: SyscallNumber.mmap, args: [0x20000, 0x1000, UInt64(PROT_READ), flags, UInt64.max, 0]),
            .init(tid: nil, nr: SyscallNumber.mprotect, args: [0x10000, 0x3000, UInt64(PROT_READ), 0, 0, 0]),
        ])
        #expect(task.marks["fill"] == 2)
    }

    @Test("a file mapping uses the task's fd and offset, then closes it; special areas are not mapped")
    func fileAndSpecialAreas() throws {
        let task = RecordingTask()
        let file = Self.vma(0x40000, 0x42000, prot: PROT_READ | PROT_EXEC, flags: MAP_PRIVATE,
                            status: Self.regular | Self.filePrivate, pgoff: 0x3000, shmid: 9)
        let vdso = Self.vma(0x50000, 0x52000, prot: PROT_READ | PROT_EXEC, status: Self.regular | Self.vdso)
        let shm = Self.vma(0x60000, 0x61000, prot: PROT_READ, flags: MAP_SHARED, status: Self.regular | Self.sysvIPC, shmid: 3)
        var attached: [UInt64] = []
        try task.mapAreas([file, vdso, shm], pagemap: [], fileFds: { $0.map { $0.shmid == 9 ? 5 : nil } },
                          attach: { attached.append($0.start) }, fill: {})
        #expect(task.calls == [
            .init(tid: nil, nr: SyscallNumber.mmap, args: [0x40000, 0x2000, UInt64(PROT_READ | PROT_EXEC),
                                                          UInt64(UInt32(bitPattern: MAP_PRIVATE | MAP_FIXED)), 5, 0x3000]),
            .init(tid: nil, nr: SyscallNumber.close, args: [5, 0, 0, 0, 0, 0]),
        ])
        #expect(attached == [0x60000])
    }

    @Test("a shared anonymous area maps the shared object's fd without MAP_ANONYMOUS, never made writable for the fill")
    func sharedAnonymous() throws {
        let task = RecordingTask()
        let shared = Self.vma(0x70000, 0x72000, prot: PROT_READ, flags: MAP_SHARED | MAP_ANONYMOUS,
                              status: Self.regular | Self.anonShared, pgoff: 0x1000, shmid: 77)
        try task.mapAreas([shared], pagemap: [Self.pages(0x70000, 2)], fileFds: { $0.map { _ in 8 } }, attach: { _ in }, fill: {})
        #expect(task.calls == [
            .init(tid: nil, nr: SyscallNumber.mmap, args: [0x70000, 0x2000, UInt64(PROT_READ),
                                                          UInt64(UInt32(bitPattern: MAP_SHARED | MAP_FIXED)), 8, 0x1000]),
            .init(tid: nil, nr: SyscallNumber.close, args: [8, 0, 0, 0, 0, 0]),
        ])
    }

    @Test("an mmap that lands elsewhere fails the restore, naming the address")
    func mmapLandsElsewhere() throws {
        let task = RecordingTask()
        task.result = { _ in 0x99000 }
        #expect {
            try task.mapAreas([Self.vma(0x10000, 0x11000, prot: PROT_READ)], pagemap: [], fileFds: { $0.map { _ in nil } }, attach: { _ in }, fill: {})
        } throws: { ($0 as? CheckpointError)?.message.contains("0x10000") == true }
    }

    static func special(_ start: UInt64, _ size: UInt64, _ path: String) -> MemoryArea {
        MemoryArea(start: start, end: start + size, readable: true, writable: false, executable: path == "[vdso]", shared: false, path: path)
    }

    @Test("vvar and vdso move to their dumped addresses through a place that overlaps neither")
    func vdsoMoves() throws {
        let current = [Self.special(0x7fff_1000_0000, 0x4000, "[vvar]"), Self.special(0x7fff_1000_4000, 0x2000, "[vdso]"),
                       MemoryArea(start: 0x1000, end: 0x2000, readable: true, writable: true, executable: false, shared: false)]
        let wanted = [Self.vma(0x7ffd_0000_0000, 0x7ffd_0000_4000, prot: PROT_READ, status: Self.regular | Self.vvar),
                      Self.vma(0x7ffd_0000_4000, 0x7ffd_0000_6000, prot: PROT_READ | PROT_EXEC, status: Self.regular | Self.vdso),
                      Self.vma(0x400000, 0x401000, prot: PROT_READ)]
        let task = RecordingTask()
        try task.moveSpecialAreas(current: current, wanted: wanted, spare: 0x1000_0000)
        let mayMoveFixed: UInt64 = 3
        #expect(task.calls == [
            .init(tid: nil, nr: SyscallNumber.mremap, args: [0x7fff_1000_0000, 0x4000, 0x4000, mayMoveFixed, 0x1000_0000, 0]),
            .init(tid: nil, nr: SyscallNumber.mremap, args: [0x7fff_1000_4000, 0x2000, 0x2000, mayMoveFixed, 0x1000_4000, 0]),
            .init(tid: nil, nr: SyscallNumber.mremap, args: [0x1000_0000, 0x4000, 0x4000, mayMoveFixed, 0x7ffd_0000_0000, 0]),
            .init(tid: nil, nr: SyscallNumber.mremap, args: [0x1000_4000, 0x2000, 0x2000, mayMoveFixed, 0x7ffd_0000_4000, 0]),
        ])
        // A spare place inside the span of old and new addresses is moved above both.
        let clash = RecordingTask()
        try clash.moveSpecialAreas(current: current, wanted: wanted, spare: 0x7ffe_0000_0000)
        #expect(clash.calls[0].args[4] == 0x7fff_1000_6000 + 0x10_0000)
        // Already in place: nothing to do.
        let still = RecordingTask()
        try still.moveSpecialAreas(current: current, wanted: [Self.vma(0x7fff_1000_0000, 0x7fff_1000_4000, prot: PROT_READ, status: Self.vvar),
                                                              Self.vma(0x7fff_1000_4000, 0x7fff_1000_6000, prot: PROT_READ, status: Self.vdso)], spare: 0x1000_0000)
        #expect(still.calls.isEmpty)
    }

    @Test("a vdso of another size than the dumped one is refused before anything moves")
    func vdsoLayoutDiffers() throws {
        let task = RecordingTask()
        #expect {
            try task.moveSpecialAreas(current: [Self.special(0x7fff_1000_0000, 0x2000, "[vdso]")],
                                      wanted: [Self.vma(0x7ffd_0000_0000, 0x7ffd_0000_1000, prot: PROT_READ, status: Self.vdso)], spare: 0x1000_0000)
        } throws: { ($0 as? CheckpointError)?.code == .unsupported }
        #expect(task.calls.isEmpty)
    }

    static func fd(_ number: UInt32, id: UInt32, cloexec: Bool) -> FdinfoEntry {
        var e = FdinfoEntry()
        e.fd = number; e.id = id; e.flags = cloexec ? UInt32(FD_CLOEXEC) : 0; e.type = .reg
        return e
    }

    /// A task whose fd table is modelled: takes hand out the lowest free number, close and
    /// dup3 change the table as the kernel would.
    final class FdTable {
        var open: Set<Int32> = [30]  // the restorer's pidfd, moved above every dumped fd
        let task = RecordingTask()
        init() {
            task.kernel = { [unowned self] call, _ in
                if call.nr == SyscallNumber.close { self.open.remove(Int32(call.args[0])) }
                if call.nr == SyscallNumber.dup3 { self.open.insert(Int32(call.args[1])) }
            }
        }
        func take(_ entries: [FdinfoEntry]) -> [Int32] {
            entries.map { _ in
                var n: Int32 = 0
                while open.contains(n) { n += 1 }
                open.insert(n)
                return n
            }
        }
    }

    @Test("fds taken at their own numbers only lose close-on-exec; the others are taken again and moved by dup3")
    func fdInstallation() throws {
        let t = FdTable()
        try t.task.installFds([Self.fd(0, id: 1, cloexec: false), Self.fd(1, id: 2, cloexec: true),
                               Self.fd(5, id: 3, cloexec: true), Self.fd(9, id: 4, cloexec: false)]) { t.take($0) }
        // Taken at once: 0, 1, 2, 3. 2 and 3 go back, then each is taken (2) and moved.
        // Clearing close-on-exec changes no number: it comes last, with the others in one batch.
        #expect(t.task.calls == [
            .init(tid: nil, nr: SyscallNumber.close, args: [2, 0, 0, 0, 0, 0]),
            .init(tid: nil, nr: SyscallNumber.close, args: [3, 0, 0, 0, 0, 0]),
            .init(tid: nil, nr: SyscallNumber.dup3, args: [2, 5, UInt64(O_CLOEXEC), 0, 0, 0]),
            .init(tid: nil, nr: SyscallNumber.close, args: [2, 0, 0, 0, 0, 0]),
            .init(tid: nil, nr: SyscallNumber.dup3, args: [2, 9, 0, 0, 0, 0]),
            .init(tid: nil, nr: SyscallNumber.close, args: [2, 0, 0, 0, 0, 0]),
            .init(tid: nil, nr: SyscallNumber.fcntl, args: [0, UInt64(F_SETFD), 0, 0, 0, 0]),
        ])
        #expect(t.open == [0, 1, 5, 9, 30])
    }

    @Test("a move never lands on an fd still to be moved: fds 0, 2 and 5 taken as 0, 1 and 2")
    func fdInstallationWithoutClobbering() throws {
        let t = FdTable()
        try t.task.installFds([Self.fd(0, id: 1, cloexec: true), Self.fd(2, id: 2, cloexec: true), Self.fd(5, id: 3, cloexec: true)]) { t.take($0) }
        #expect(t.open == [0, 2, 5, 30], "\(t.task.calls)")
        #expect(t.task.calls.filter { $0.nr == SyscallNumber.dup3 }.map { $0.args[1] } == [2, 5])
    }

    @Test("root, cwd and umask: chroot only for a root other than /, the cwd after it")
    func fsState() throws {
        let plain = RecordingTask()
        try plain.setFs(root: nil, cwd: 4, umask: 0o027)
        #expect(plain.calls == [
            .init(tid: nil, nr: SyscallNumber.fchdir, args: [4, 0, 0, 0, 0, 0]),
            .init(tid: nil, nr: SyscallNumber.close, args: [4, 0, 0, 0, 0, 0]),
            .init(tid: nil, nr: SyscallNumber.umask, args: [0o027, 0, 0, 0, 0, 0]),
        ])
        let rooted = RecordingTask()
        var chrootPath = ""
        rooted.kernel = { call, t in
            if call.nr == SyscallNumber.chroot { chrootPath = String(decoding: (try? t.read(call.args[0], count: 1)) ?? [], as: UTF8.self) }
        }
        try rooted.setFs(root: 6, cwd: 4, umask: 0o022)
        #expect(rooted.numbers == [SyscallNumber.fchdir, SyscallNumber.chroot, SyscallNumber.close,
                                   SyscallNumber.fchdir, SyscallNumber.close, SyscallNumber.umask])
        #expect(rooted.calls[0].args[0] == 6 && rooted.calls[3].args[0] == 4)
        #expect(chrootPath == ".")
    }

    @Test("mm fields go in one PR_SET_MM_MAP naming the exe fd, which is closed after")
    func mmMap() throws {
        let task = RecordingTask()
        var map: [UInt8] = []
        task.kernel = { call, t in if call.nr == SyscallNumber.prctl { map = (try? t.read(call.args[2], count: Int(call.args[3]))) ?? [] } }
        var mm = MmEntry()
        mm.mmStartCode = 0x400000; mm.mmEndCode = 0x401000; mm.mmBrk = 0x600000
        mm.mmSavedAuxv = [33, 0x7fff_0000, 0, 0]
        try task.setMMMap(mm, exe: 7)
        #expect(task.numbers == [SyscallNumber.prctl, SyscallNumber.close])
        #expect(task.calls[0].args[0] == 35 && task.calls[0].args[1] == 14)   // PR_SET_MM, PR_SET_MM_MAP
        #expect(task.calls[0].args[3] == 12 * 8 + 8)                            // struct prctl_mm_map
        #expect(task.calls[1].args[0] == 7)
        let words = map.withUnsafeBytes { p in (0..<12).map { p.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) } }
        #expect(words[0] == 0x400000 && words[1] == 0x401000 && words[5] == 0x600000)
        #expect(try task.readWords(words[11], count: 4) == [33, 0x7fff_0000, 0, 0])   // auxv copied where the map says
        let tail = map.withUnsafeBytes { p in (p.loadUnaligned(fromByteOffset: 96, as: UInt32.self), p.loadUnaligned(fromByteOffset: 100, as: UInt32.self)) }
        #expect(tail.0 == 32 && tail.1 == 7)
    }

    static func creds(uid: UInt32, caps: UInt64) -> CredsEntry {
        var c = CredsEntry()
        c.uid = uid; c.euid = uid; c.suid = uid; c.fsuid = uid; c.gid = uid; c.egid = uid; c.sgid = uid; c.fsgid = uid
        let words = [UInt32(caps & 0xffff_ffff), UInt32(caps >> 32)]
        c.capEff = words; c.capPrm = words; c.capInh = [0, 0]; c.capBnd = words; c.capAmb = [0, 0]
        c.groups = []; c.noNewPrivs = 0; c.secbits = 0
        return c
    }

    @Test("credentials equal to the restorer's need no syscall; others drop bounding caps first, capset, then keep-caps off")
    func credentials() throws {
        var ours = try TaskStatus.read(pid: getpid())
        ours.capEff = 0x1ff; ours.capPrm = 0x1ff; ours.capInh = 0; ours.capBnd = 0x1ff; ours.capAmb = 0
        let same = RecordingTask()
        try same.setCreds(Self.creds(uid: 0, caps: 0x1ff), on: 77, restorer: ours)
        #expect(same.calls.isEmpty)

        let user = RecordingTask()
        try user.setCreds(Self.creds(uid: 1000, caps: 0x0ff), on: 77, restorer: ours)
        #expect(user.calls.allSatisfy { $0.tid == 77 })
        #expect(user.numbers == [SyscallNumber.prctl, SyscallNumber.setgroups, SyscallNumber.prctl,
                                 SyscallNumber.setresgid, SyscallNumber.setresuid, SyscallNumber.capset, SyscallNumber.prctl])
        #expect(user.calls[0].args[0] == 24 && user.calls[0].args[1] == 8)     // PR_CAPBSET_DROP of cap 8 only
        #expect(user.calls[2].args[0] == 8 && user.calls[2].args[1] == 1)      // PR_SET_KEEPCAPS before the ids change
        #expect(Array(user.calls[4].args[0...2]) == [1000, 1000, 1000])
        #expect(user.calls[6].args[0] == 8 && user.calls[6].args[1] == 0)      // keep-caps off again: not dumped
    }
}
