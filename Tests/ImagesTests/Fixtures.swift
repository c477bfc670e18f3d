import Foundation
import Images

/// Sample CRIU records with every `required` field set, shared by the round-trip and crit tests.
enum Fixtures {
    static let pid: UInt32 = 4242
    static let childPid: UInt32 = 4250
    static let pipePayload = Data("hello from a pipe\n".utf8)
    static let ghostContents = Data("ghost file body".utf8)

    /// A fresh directory under the system temp dir; removed by the caller.
    static func tempDir(_ tag: String = #function) throws -> URL {
        let safe = tag.filter { $0.isLetter || $0.isNumber }
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("images-tests-\(safe)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func rootIds() -> TaskKobjIdsEntry {
        var ids = TaskKobjIdsEntry()
        ids.vmID = 1; ids.filesID = 2; ids.fsID = 3; ids.sighandID = 4
        ids.pidNsID = 5; ids.netNsID = 6; ids.ipcNsID = 7; ids.utsNsID = 8
        ids.mntNsID = 9; ids.userNsID = 10; ids.cgroupNsID = 11; ids.timeNsID = 12
        return ids
    }

    static func inventory() -> InventoryEntry {
        var inv = InventoryEntry()
        inv.imgVersion = 2
        inv.fdinfoPerID = true
        inv.rootIds = rootIds()
        inv.nsPerID = true
        inv.rootCgSet = 1
        inv.lsmtype = .noLsm
        inv.dumpUptime = 987_654_321
        inv.dumpCriuRunID = "ocicheckpoint-test"
        return inv
    }

    static func pstree() -> [PstreeEntry] {
        var root = PstreeEntry()
        root.pid = pid; root.ppid = 0; root.pgid = pid; root.sid = pid
        root.threads = [pid, pid + 1]
        var child = PstreeEntry()
        child.pid = childPid; child.ppid = pid; child.pgid = pid; child.sid = pid
        child.threads = [childPid]
        return [root, child]
    }

    static func gpregs() -> UserX86RegsEntry {
        var r = UserX86RegsEntry()
        r.r15 = 15; r.r14 = 14; r.r13 = 13; r.r12 = 12; r.bp = 0x7ffd_0000_1000; r.bx = 6
        r.r11 = 0x246; r.r10 = 10; r.r9 = 9; r.r8 = 8; r.ax = 0xffff_ffff_ffff_fdfc; r.cx = 0x40_1234
        r.dx = 13; r.si = 14; r.di = 15; r.origAx = 230; r.ip = 0x40_1000; r.cs = 0x33
        r.flags = 0x246; r.sp = 0x7ffd_0000_0f00; r.ss = 0x2b; r.fsBase = 0x7f00_dead_b000
        r.gsBase = 0; r.ds = 0; r.es = 0; r.fs = 0; r.gs = 0
        r.mode = .native
        return r
    }

    static func fpregs() -> UserX86FpregsEntry {
        var f = UserX86FpregsEntry()
        f.cwd = 0x37f; f.swd = 0; f.twd = 0; f.fop = 0; f.rip = 0; f.rdp = 0
        f.mxcsr = 0x1f80; f.mxcsrMask = 0xffff
        f.stSpace = Array(repeating: 0, count: 32)
        f.xmmSpace = (0..<64).map { UInt32($0) }
        f.padding = Array(repeating: 0, count: 24)
        var xsave = UserX86XsaveEntry()
        xsave.xstateBv = 0x7
        xsave.ymmhSpace = (0..<64).map { UInt32(1000 + $0) }
        f.xsave = xsave
        return f
    }

    static func creds() -> CredsEntry {
        var c = CredsEntry()
        c.uid = 1000; c.gid = 1000; c.euid = 1000; c.egid = 1000
        c.suid = 1000; c.sgid = 1000; c.fsuid = 1000; c.fsgid = 1000
        c.capInh = [0, 0]; c.capPrm = [0xffff_ffff, 0x1ff]; c.capEff = [0xffff_ffff, 0x1ff]
        c.capBnd = [0xffff_ffff, 0x1ff]
        c.secbits = 0
        c.groups = [1000, 27]
        c.noNewPrivs = 0
        return c
    }

    static func itimer(_ sec: UInt64) -> ItimerEntry {
        var t = ItimerEntry()
        t.isec = sec; t.iusec = 0; t.vsec = sec; t.vusec = 500
        return t
    }

    static func sigaction(_ handler: UInt64) -> SaEntry {
        var sa = SaEntry()
        sa.sigaction = handler; sa.flags = 0x0400_0000; sa.restorer = 0x40_2000; sa.mask = 0
        return sa
    }

    static func core(pid: UInt32 = pid, comm: String = "sleeper") -> CoreEntry {
        var core = CoreEntry()
        core.mtype = .x8664

        var ti = ThreadInfoX86()
        ti.clearTidAddr_p = 0x7f00_0000_2a10
        ti.gpregs = gpregs()
        ti.fpregs = fpregs()
        core.threadInfo = ti

        var tc = TaskCoreEntry()
        tc.taskState = 1
        tc.exitCode = 0
        tc.personality = 0
        tc.flags = 0x40_0100
        tc.blkSigset = 0
        tc.comm = comm
        var timers = TaskTimersEntry()
        timers.real = itimer(0); timers.virt = itimer(0); timers.prof = itimer(0)
        tc.timers = timers
        var rl = RlimitEntry(); rl.cur = 1024; rl.max = 4096
        var rlimits = TaskRlimitsEntry(); rlimits.rlimits = [rl]
        tc.rlimits = rlimits
        tc.cgSet = 1
        tc.loginuid = 0xffff_ffff
        tc.oomScoreAdj = -17
        tc.sigactions = [sigaction(0x40_1500)]
        tc.childSubreaper = false
        core.tc = tc

        var ids = TaskKobjIdsEntry()
        ids.vmID = 1; ids.filesID = 2; ids.fsID = 3; ids.sighandID = 4
        core.ids = ids

        var th = ThreadCoreEntry()
        th.futexRla = 0x7f00_0000_2a20
        th.futexRlaLen = 24
        th.schedNice = -5
        th.schedPolicy = 0
        th.blkSigset = 0x1_0000
        th.creds = creds()
        th.seccompMode = .disabled
        th.comm = comm
        var rseq = RseqEntry()
        rseq.rseqAbiPointer = 0x7f00_0000_3000; rseq.rseqAbiSize = 32; rseq.signature = 0x5305_3053
        th.rseqEntry = rseq
        core.threadCore = th
        return core
    }

    static func mm() -> MmEntry {
        var mm = MmEntry()
        mm.mmStartCode = 0x40_0000; mm.mmEndCode = 0x40_5000
        mm.mmStartData = 0x60_0000; mm.mmEndData = 0x60_1000
        mm.mmStartStack = 0x7ffd_0000_0000; mm.mmStartBrk = 0x70_0000; mm.mmBrk = 0x72_1000
        mm.mmArgStart = 0x7ffd_0000_f000; mm.mmArgEnd = 0x7ffd_0000_f010
        mm.mmEnvStart = 0x7ffd_0000_f010; mm.mmEnvEnd = 0x7ffd_0000_ff00
        mm.exeFileID = 7
        mm.mmSavedAuxv = [33, 0x7ffd_0001_0000, 0, 0]
        var code = VmaEntry()
        code.start = 0x40_0000; code.end = 0x40_5000; code.pgoff = 0; code.shmid = 7
        code.prot = 0x5; code.flags = 0x2; code.status = 0x1 | 0x40; code.fd = -1
        var heap = VmaEntry()
        heap.start = 0x70_0000; heap.end = 0x72_1000; heap.pgoff = 0; heap.shmid = 0
        heap.prot = 0x3; heap.flags = 0x22; heap.status = 0x1 | 0x2 | 0x200; heap.fd = -1
        mm.vmas = [code, heap]
        mm.dumpable = 1
        return mm
    }

    static func pagemapHead() -> PagemapHead {
        var h = PagemapHead(); h.pagesID = 1; return h
    }

    static func pagemapEntries() -> [PagemapEntry] {
        var a = PagemapEntry()
        a.vaddr = 0x70_0000; a.compatNrPages = 3; a.nrPages = 3; a.flags = 4
        var b = PagemapEntry()
        b.vaddr = 0x7ffd_0000_0000; b.compatNrPages = 1; b.nrPages = 1; b.flags = 4
        return [a, b]
    }

    static func fown() -> FownEntry {
        var f = FownEntry(); f.uid = 0; f.euid = 0; f.signum = 0; f.pidType = 0; f.pid = 0
        return f
    }

    static func regFile(id: UInt32, name: String) -> RegFileEntry {
        var r = RegFileEntry()
        r.id = id; r.flags = 0o100002; r.pos = 12; r.fown = fown(); r.name = name
        r.mntID = 21; r.size = 4096; r.mode = 0o100644
        return r
    }

    static func pipe(id: UInt32, pipeID: UInt32, flags: UInt32) -> PipeEntry {
        var p = PipeEntry(); p.id = id; p.pipeID = pipeID; p.flags = flags; p.fown = fown()
        return p
    }

    static func files() -> [FileEntry] {
        var reg = FileEntry(); reg.type = .reg; reg.id = 1; reg.reg = regFile(id: 1, name: "/var/log/app.log")
        var rd = FileEntry(); rd.type = .pipe; rd.id = 2; rd.pipe = pipe(id: 2, pipeID: 31337, flags: 0)
        var wr = FileEntry(); wr.type = .pipe; wr.id = 3; wr.pipe = pipe(id: 3, pipeID: 31337, flags: 1)
        return [reg, rd, wr]
    }

    static func fdinfo() -> [FdinfoEntry] {
        [(UInt32(1), UInt32(3)), (2, 0), (3, 1)].map { id, fd in
            var e = FdinfoEntry(); e.id = id; e.flags = 0; e.type = id == 1 ? .reg : .pipe; e.fd = fd
            return e
        }
    }

    static func fs() -> FsEntry {
        var f = FsEntry(); f.cwdID = 8; f.rootID = 9; f.umask = 0o022; return f
    }

    static func pipeData() -> PipeDataEntry {
        var p = PipeDataEntry(); p.pipeID = 31337; p.bytes = UInt32(pipePayload.count); p.size = 65536
        return p
    }

    static func posixTimer() -> PosixTimerEntry {
        var t = PosixTimerEntry()
        t.itID = 0; t.clockID = 1; t.siSigno = 14; t.itSigevNotify = 0; t.sivalPtr = 0
        t.overrun = 0; t.isec = 1; t.insec = 0; t.vsec = 0; t.vnsec = 500_000_000
        return t
    }

    static func coreWithPosixTimers() -> CoreEntry {
        var c = core(pid: 4300)
        var thread = PosixTimerEntry()
        thread.itID = 7; thread.clockID = 7; thread.siSigno = 37; thread.itSigevNotify = 4; thread.sivalPtr = 0x3333
        thread.overrun = 0; thread.isec = 0; thread.insec = 100_000_000; thread.vsec = 0; thread.vnsec = 40_000_000
        thread.notifyThreadID = 4243
        var cpu = posixTimer()
        cpu.itID = 8; cpu.clockID = UInt32(bitPattern: -6); cpu.itSigevNotify = 1; cpu.overrun = 3
        c.tc.timers.posix = [thread, cpu]
        return c
    }

    static func fileLocks() -> [FileLockEntry] {
        [(UInt32(2), UInt32(1), Int32(3), Int64(0), Int64(0)), (1, 0, 4, 100, 0), (4, 1, 5, 0, 50)].map { flag, type, fd, start, len in
            var l = FileLockEntry()
            l.flag = flag; l.type = type; l.pid = 4242; l.fd = fd; l.start = start; l.len = len
            return l
        }
    }

    static func stats() -> StatsEntry {
        var d = DumpStatsEntry()
        d.freezingTime = 1200; d.frozenTime = 34_000; d.memdumpTime = 2100; d.memwriteTime = 1800
        d.pagesScanned = 4242; d.pagesSkippedParent = 0; d.pagesWritten = 4096; d.pagesLazy = 0
        var s = StatsEntry(); s.dump = d
        return s
    }

    static func ghostFile() -> GhostFileEntry {
        var g = GhostFileEntry()
        g.uid = 1000; g.gid = 1000; g.mode = 0o100600; g.dev = 0x803; g.ino = 777
        var t = Timeval(); t.tvSec = 1_700_000_000; t.tvUsec = 5
        g.atim = t; g.mtim = t
        g.chunks = false; g.size = UInt64(ghostContents.count)
        return g
    }

    /// An established IPv4 TCP connection and a bound IPv6 UDP socket.
    static func inetSockets() -> [InetSkEntry] {
        var opts = SkOptsEntry()
        opts.soSndbuf = 87040; opts.soRcvbuf = 131072
        opts.soSndTmoSec = 0; opts.soSndTmoUsec = 0; opts.soRcvTmoSec = 0; opts.soRcvTmoUsec = 0
        opts.reuseaddr = true; opts.soKeepalive = true; opts.tcpKeepidle = 77
        var tcp = InetSkEntry()
        tcp.id = 7; tcp.ino = 0x1f; tcp.family = 2; tcp.type = 1; tcp.proto = 6; tcp.state = 1
        tcp.srcPort = 5000; tcp.dstPort = 41234; tcp.flags = 0o4002; tcp.backlog = 0
        tcp.srcAddr = [UInt32(bigEndian: 0x0a00_0002)]; tcp.dstAddr = [UInt32(bigEndian: 0x0a00_0001)]
        tcp.fown = FownEntry(); tcp.fown.uid = 0; tcp.fown.euid = 0; tcp.fown.signum = 0; tcp.fown.pidType = 0; tcp.fown.pid = 0
        tcp.opts = opts
        var udp = tcp
        udp.id = 8; udp.ino = 0x20; udp.family = 10; udp.type = 2; udp.proto = 17; udp.state = 7
        udp.srcPort = 53; udp.dstPort = 0; udp.v6Only = true
        udp.srcAddr = [0, 0, 0, UInt32(bigEndian: 1)]; udp.dstAddr = [0, 0, 0, 0]
        udp.opts.soBoundDev = "lo"
        return [tcp, udp]
    }

    static func tcpStream() -> TcpStreamEntry {
        var t = TcpStreamEntry()
        t.inqLen = 2; t.inqSeq = 1000; t.outqLen = 4; t.outqSeq = 2000; t.optMask = 7
        t.sndWscale = 7; t.rcvWscale = 7; t.mssClamp = 65483; t.timestamp = 123456
        t.unsqLen = 0; t.sndWl1 = 999; t.sndWnd = 65536; t.maxWindow = 65536; t.rcvWnd = 65536; t.rcvWup = 1000
        return t
    }
}
