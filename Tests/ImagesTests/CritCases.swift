import Foundation
import Images
import Testing

/// Every image kind the engine writes, with what crit must read back from it.
enum CritCases {
    static let pid = Fixtures.pid

    static let all: [CritCase] = [
        CritCase(file: "inventory.img", magic: .inventory, critName: "INVENTORY",
                 write: { try $0.append(Fixtures.inventory()) },
                 check: { e in
                     #expect(e.count == 1)
                     #expect(e.first?.int("img_version") == 2)
                     #expect(e.first?.int("root_ids.files_id") == 2)
                     #expect(e.first?.int("root_ids.time_ns_id") == 12)
                     #expect(e.first?.value("ns_per_id") as? Bool == true)
                     #expect(e.first?.string("lsmtype") == "NO_LSM")
                 }),
        CritCase(file: "pstree.img", magic: .pstree, critName: "PSTREE",
                 write: { w in for p in Fixtures.pstree() { try w.append(p) } },
                 check: { e in
                     #expect(e.map { $0.int("pid") } == [4242, 4250])
                     #expect(e.last?.int("ppid") == 4242)
                     #expect(e.first?.count("threads") == 2)
                     #expect(e.first?.int("threads.1") == 4243)
                 }),
        CritCase(file: "core-\(pid).img", magic: .core, critName: "CORE",
                 write: { try $0.append(Fixtures.core()) },
                 check: { e in
                     let c = e.first
                     #expect(c?.string("mtype") == "X86_64")
                     #expect(c?.string("tc.comm") == "sleeper")
                     #expect(c?.int("tc.oom_score_adj") == -17)
                     #expect(c?.int("tc.rlimits.rlimits.0.max") == 4096)
                     #expect(c?.int("tc.sigactions.0.sigaction") == 0x40_1500)
                     #expect(c?.int("thread_info.clear_tid_addr") == 0x7f00_0000_2a10)
                     #expect(c?.int("thread_info.gpregs.ip") == 0x40_1000)
                     #expect(c?.int("thread_info.gpregs.sp") == 0x7ffd_0000_0f00)
                     #expect(c?.int("thread_info.gpregs.orig_ax") == 230)
                     #expect(c?.string("thread_info.gpregs.mode") == "NATIVE")
                     #expect(c?.int("thread_info.fpregs.mxcsr") == 0x1f80)
                     #expect(c?.count("thread_info.fpregs.xmm_space") == 64)
                     #expect(c?.int("thread_info.fpregs.xsave.ymmh_space.63") == 1063)
                     #expect(c?.int("ids.files_id") == 2)
                     #expect(c?.int("thread_core.futex_rla_len") == 24)
                     #expect(c?.int("thread_core.sched_nice") == -5)
                     #expect(c?.int("thread_core.creds.uid") == 1000)
                     #expect(c?.int("thread_core.rseq_entry.rseq_abi_size") == 32)
                     #expect(c?.string("thread_core.comm") == "sleeper")
                 }),
        CritCase(file: "ids-\(pid).img", magic: .ids, critName: "IDS",
                 write: { try $0.append(Fixtures.rootIds()) },
                 check: { e in
                     #expect(e.first?.int("vm_id") == 1)
                     #expect(e.first?.int("sighand_id") == 4)
                     #expect(e.first?.int("mnt_ns_id") == 9)
                 }),
        CritCase(file: "mm-\(pid).img", magic: .mm, critName: "MM",
                 write: { try $0.append(Fixtures.mm()) },
                 check: { e in
                     #expect(e.first?.int("mm_start_code") == 0x40_0000)
                     #expect(e.first?.int("exe_file_id") == 7)
                     #expect(e.first?.count("vmas") == 2)
                     #expect(e.first?.int("vmas.1.end") == 0x72_1000)
                     #expect(e.first?.int("vmas.0.fd") == -1)
                     #expect(e.first?.count("mm_saved_auxv") == 4)
                 }),
        CritCase(file: "pagemap-\(pid).img", magic: .pagemap, critName: "PAGEMAP",
                 write: { w in
                     try w.append(Fixtures.pagemapHead())
                     for p in Fixtures.pagemapEntries() { try w.append(p) }
                 },
                 check: { e in
                     #expect(e.count == 3)
                     #expect(e.first?.int("pages_id") == 1)
                     #expect(e.dropFirst().first?.int("vaddr") == 0x70_0000)
                     // CRIU 3.17 calls field 2 nr_pages; 4.x renamed it compat_nr_pages and added nr_pages = 5.
                     #expect(e.dropFirst().first?.int("nr_pages") == 3)
                     #expect(e.last?.int("nr_pages") == 1)
                 }),
        CritCase(file: "files.img", magic: .files, critName: "FILES",
                 write: { w in for f in Fixtures.files() { try w.append(f) } },
                 check: { e in
                     #expect(e.map { $0.string("type") } == ["REG", "PIPE", "PIPE"])
                     #expect(e.first?.string("reg.name") == "/var/log/app.log")
                     #expect(e.first?.int("reg.pos") == 12)
                     #expect(e.first?.int("reg.mnt_id") == 21)
                     #expect(e.last?.int("pipe.pipe_id") == 31337)
                     #expect(e.last?.int("id") == 3)
                 }),
        CritCase(file: "fdinfo-2.img", magic: .fdinfo, critName: "FDINFO",
                 write: { w in for f in Fixtures.fdinfo() { try w.append(f) } },
                 check: { e in
                     #expect(e.map { $0.int("fd") } == [3, 0, 1])
                     #expect(e.map { $0.string("type") } == ["REG", "PIPE", "PIPE"])
                 }),
        CritCase(file: "fs-\(pid).img", magic: .fs, critName: "FS",
                 write: { try $0.append(Fixtures.fs()) },
                 check: { e in
                     #expect(e.first?.int("cwd_id") == 8)
                     #expect(e.first?.int("root_id") == 9)
                     #expect(e.first?.int("umask") == 0o022)
                 }),
        CritCase(file: "creds-\(pid).img", magic: .creds, critName: "CREDS",
                 write: { try $0.append(Fixtures.creds()) },
                 check: { e in
                     #expect(e.first?.int("euid") == 1000)
                     #expect(e.first?.int("groups.1") == 27)
                     #expect(e.first?.count("cap_eff") == 2)
                 }),
        CritCase(file: "sigacts-\(pid).img", magic: .sigacts, critName: "SIGACT",
                 write: { w in for h: UInt64 in [0, 1, 0x40_1500] { try w.append(Fixtures.sigaction(h)) } },
                 check: { e in
                     #expect(e.count == 3)
                     #expect(e.last?.int("sigaction") == 0x40_1500)
                     #expect(e.last?.int("restorer") == 0x40_2000)
                 }),
        CritCase(file: "itimers-\(pid).img", magic: .itimers, critName: "ITIMERS",
                 write: { w in for s: UInt64 in [5, 0, 0] { try w.append(Fixtures.itimer(s)) } },
                 check: { e in
                     #expect(e.count == 3)
                     #expect(e.first?.int("isec") == 5)
                     #expect(e.first?.int("vusec") == 500)
                 }),
        CritCase(file: "posix-timers-\(pid).img", magic: .posixTimers, critName: "POSIX_TIMERS",
                 write: { try $0.append(Fixtures.posixTimer()) },
                 check: { e in
                     #expect(e.first?.int("si_signo") == 14)
                     #expect(e.first?.int("vnsec") == 500_000_000)
                 }),
        CritCase(file: "rlimit-\(pid).img", magic: .rlimit, critName: "RLIMIT",
                 write: { w in var r = RlimitEntry(); r.cur = 1024; r.max = 4096; try w.append(r) },
                 check: { e in #expect(e.first?.int("cur") == 1024) }),
        CritCase(file: "pipes.img", magic: .pipes, critName: "PIPES",
                 write: { w in
                     try w.append(Fixtures.pipe(id: 2, pipeID: 31337, flags: 0))
                     try w.append(Fixtures.pipe(id: 3, pipeID: 31337, flags: 1))
                 },
                 check: { e in
                     #expect(e.count == 2)
                     #expect(e.first?.int("pipe_id") == 31337)
                     #expect(e.first?.int("fown.uid") == 0)
                 }),
        CritCase(file: "pipes-data.img", magic: .pipesData, critName: "PIPES_DATA",
                 write: { w in
                     try w.append(Fixtures.pipeData())
                     try w.appendRaw(Fixtures.pipePayload)
                 },
                 check: { e in
                     #expect(e.first?.int("pipe_id") == 31337)
                     #expect(e.first?.int("bytes") == Int64(Fixtures.pipePayload.count))
                     #expect(e.first?.payload() == Fixtures.pipePayload)
                 }),
        CritCase(file: "fifo.img", magic: .fifo, critName: "FIFO",
                 write: { w in var f = FifoEntry(); f.id = 5; f.pipeID = 77; f.regfID = 6; try w.append(f) },
                 check: { e in
                     #expect(e.first?.int("pipe_id") == 77)
                     #expect(e.first?.int("regf_id") == 6)
                 }),
        CritCase(file: "fifo-data.img", magic: .fifoData, critName: "FIFO_DATA",
                 write: { w in
                     var d = PipeDataEntry(); d.pipeID = 77; d.bytes = 3
                     try w.append(d)
                     try w.appendRaw(Data([1, 2, 3]))
                 },
                 check: { e in #expect(e.first?.payload() == Data([1, 2, 3])) }),
        CritCase(file: "inetsk.img", magic: .inetsk, critName: "INETSK",
                 write: { w in for e in Fixtures.inetSockets() { try w.append(e) } },
                 check: { e in
                     #expect(e.map { $0.string("proto") } == ["TCP", "UDP"])
                     #expect(e.map { $0.string("family") } == ["INET", "INET6"])
                     #expect(e.map { $0.int("src_port") } == [5000, 53])
                     #expect(e.first?.int("dst_port") == 41234)
                     #expect(e.first?.string("state") == "ESTABLISHED")
                     #expect(e.first?.value("src_addr.0") as? String == "10.0.0.2")
                     #expect(e.first?.int("opts.so_sndbuf") == 87040)
                     #expect(e.first?.value("opts.so_keepalive") as? Bool == true)
                     #expect(e.first?.int("opts.tcp_keepidle") == 77)
                     #expect(e.last?.value("v6only") as? Bool == true)
                     #expect(e.last?.value("src_addr.0") as? String == "::1")
                     #expect(e.last?.string("opts.so_bound_dev") == "lo")
                 }),
        CritCase(file: "tcp-stream-1f.img", magic: .tcpStream, critName: "TCP_STREAM",
                 write: { w in
                     try w.append(Fixtures.tcpStream())
                     try w.appendRaw(Data("in".utf8))
                     try w.appendRaw(Data("out!".utf8))
                 },
                 check: { e in
                     #expect(e.first?.int("inq_seq") == 1000)
                     #expect(e.first?.int("outq_len") == 4)
                     #expect(e.first?.int("mss_clamp") == 65483)
                     #expect(e.first?.int("snd_wnd") == 65536)
                     #expect(e.first?.payload("extra.inq") == Data("in".utf8))
                     #expect(e.first?.payload("extra.outq") == Data("out!".utf8))
                 }),
        CritCase(file: "reg-files.img", magic: .regFiles, critName: "REG_FILES",
                 write: { try $0.append(Fixtures.regFile(id: 6, name: "/tmp/fifo")) },
                 check: { e in #expect(e.first?.string("name") == "/tmp/fifo") }),
        CritCase(file: "remap-fpath.img", magic: .remapFpath, critName: "REMAP_FPATH",
                 write: { w in
                     var r = RemapFilePathEntry(); r.origID = 1; r.remapID = 2; r.remapType = .ghost
                     try w.append(r)
                 },
                 check: { e in
                     #expect(e.first?.int("remap_id") == 2)
                     #expect(e.first?.string("remap_type") == "GHOST")
                 }),
        CritCase(file: "ghost-file-2.img", magic: .ghostFile, critName: "GHOST_FILE",
                 write: { w in
                     try w.append(Fixtures.ghostFile())
                     try w.appendRaw(Fixtures.ghostContents)
                 },
                 check: { e in
                     #expect(e.first?.int("ino") == 777)
                     #expect(e.first?.int("atim.tv_sec") == 1_700_000_000)
                     #expect(e.first?.payload() == Fixtures.ghostContents)
                 }),
        CritCase(file: "stats-dump", magic: .stats, critName: "STATS",
                 write: { try $0.append(Fixtures.stats()) },
                 check: { e in
                     #expect(e.first?.int("dump.pages_scanned") == 4242)
                     #expect(e.first?.int("dump.frozen_time") == 34_000)
                 }),
        CritCase(file: "utsns-11.img", magic: .utsns, critName: "UTSNS",
                 write: { w in var u = UtsnsEntry(); u.nodename = "box"; u.domainname = "(none)"; try w.append(u) },
                 check: { e in #expect(e.first?.string("nodename") == "box") }),
        CritCase(file: "ipcns-var-12.img", magic: .ipcVar, critName: "IPC_VAR",
                 write: { w in
                     var v = IpcVarEntry()
                     v.semCtls = [32000, 1_024_000_000, 500, 32000]
                     v.msgCtlmax = 8192; v.msgCtlmnb = 16384; v.msgCtlmni = 32000; v.autoMsgmni = 0
                     v.shmCtlmax = 18_446_744_073_692_774_399; v.shmCtlall = 18_446_744_073_692_774_399
                     v.shmCtlmni = 4096; v.shmRmidForced = 0
                     v.mqQueuesMax = 256; v.mqMsgMax = 10; v.mqMsgsizeMax = 8192
                     try w.append(v)
                 },
                 check: { e in
                     #expect(e.first?.int("msg_ctlmni") == 32000)
                     #expect(e.first?.count("sem_ctls") == 4)
                 }),
        CritCase(file: "cgroup.img", magic: .cgroup, critName: "CGROUP",
                 write: { w in
                     var m = CgMemberEntry(); m.name = "memory"; m.path = "/user.slice/ctr"
                     var set = CgSetEntry(); set.id = 1; set.ctls = [m]
                     var prop = CgroupPropEntry(); prop.name = "memory.limit_in_bytes"; prop.value = "1073741824"
                     var dir = CgroupDirEntry(); dir.dirName = "user.slice/ctr"; dir.properties = [prop]
                     var ctl = CgControllerEntry(); ctl.cnames = ["memory"]; ctl.dirs = [dir]
                     var c = CgroupEntry(); c.sets = [set]; c.controllers = [ctl]
                     try w.append(c)
                 },
                 check: { e in
                     #expect(e.first?.string("sets.0.ctls.0.path") == "/user.slice/ctr")
                     #expect(e.first?.string("controllers.0.dirs.0.properties.0.value") == "1073741824")
                 }),
        CritCase(file: "mountpoints-13.img", magic: .mountpoints, critName: "MNTS",
                 write: { w in
                     var m = MntEntry()
                     m.fstype = 5; m.mntID = 21; m.rootDev = 0x2d; m.parentMntID = 20; m.flags = 0x20_0000
                     m.root = "/"; m.mountpoint = "/tmp"; m.source = "tmpfs"; m.options = "size=65536k"
                     m.sharedID = 0; m.masterID = 0
                     try w.append(m)
                 },
                 check: { e in
                     #expect(e.first?.string("mountpoint") == "/tmp")
                     #expect(e.first?.int("mnt_id") == 21)
                 }),
        CritCase(file: "seccomp.img", magic: .seccomp, critName: "SECCOMP",
                 write: { w in
                     var f = SeccompFilter(); f.filter = Data(repeating: 0x06, count: 8); f.prev = 0; f.flags = 0
                     var s = SeccompEntry(); s.seccompFilters = [f]
                     try w.append(s)
                 },
                 check: { e in #expect(e.first?.count("seccomp_filters") == 1) }),
        CritCase(file: "timens-15.img", magic: .timens, critName: "TIMENS",
                 write: { w in
                     var mono = Timespec(); mono.tvSec = 100; mono.tvNsec = 5
                     var boot = Timespec(); boot.tvSec = 200; boot.tvNsec = 6
                     var t = TimensEntry(); t.monotonic = mono; t.boottime = boot
                     try w.append(t)
                 },
                 check: { e in #expect(e.first?.int("boottime.tv_sec") == 200) }),
        CritCase(file: "userns-14.img", magic: .userns, critName: "USERNS",
                 write: { w in
                     var x = UidGidExtent(); x.first = 0; x.lowerFirst = 100_000; x.count = 65536
                     var u = UsernsEntry(); u.uidMap = [x]; u.gidMap = [x]
                     try w.append(u)
                 },
                 check: { e in #expect(e.first?.int("uid_map.0.lower_first") == 100_000) }),
        CritCase(file: "pidns-16.img", magic: .pidns, critName: "PIDNS",
                 write: { w in var p = PidnsEntry(); p.extKey = "pidns-ext"; try w.append(p) },
                 check: { e in #expect(e.first?.string("ext_key") == "pidns-ext") }),
        CritCase(file: "netns-10.img", magic: .netns, critName: "NETNS",
                 write: { w in var n = NetnsEntry(); n.defConf = [1, 0]; n.allConf = [1, 0]; try w.append(n) },
                 check: { e in #expect(e.first?.count("def_conf") == 2) }),
        CritCase(file: "netdev-10.img", magic: .netdev, critName: "NETDEV",
                 write: { w in
                     var d = NetDeviceEntry(); d.type = .loopback; d.ifindex = 1; d.mtu = 65536
                     d.flags = 0x49; d.name = "lo"
                     try w.append(d)
                 },
                 check: { e in
                     #expect(e.first?.string("name") == "lo")
                     #expect(e.first?.string("type") == "LOOPBACK")
                 }),
        CritCase(file: "tty-info.img", magic: .ttyInfo, critName: "TTY_INFO",
                 write: { w in
                     var t = TtyInfoEntry(); t.id = 7; t.type = .pty; t.locked = true; t.exclusive = false
                     t.packetMode = true; t.sid = 4242; t.pgrp = 4250; t.rdev = 0x8803; t.dev = 0x19
                     var pty = TtyPtyEntry(); pty.index = 3; t.pty = pty
                     var tio = TermiosEntry(); tio.cIflag = 0; tio.cOflag = 4; tio.cCflag = 0xbf; tio.cLflag = 0xa31
                     tio.cLine = 0; tio.cIspeed = 0; tio.cOspeed = 0; tio.cCc = (0..<19).map { $0 == 0 ? 0x18 : UInt32($0) }
                     t.termios = tio
                     var locked = tio; locked.cCc = Array(repeating: 0, count: 19); t.termiosLocked = locked
                     var ws = WinsizeEntry(); ws.wsRow = 37; ws.wsCol = 111; ws.wsXpixel = 555; ws.wsYpixel = 777
                     t.winsize = ws
                     try w.append(t)
                 },
                 check: { e in
                     #expect(e.first?.string("type") == "PTY")
                     #expect(e.first?.int("pty.index") == 3)
                     #expect(e.first?.value("packet_mode") as? Bool == true)
                     #expect(e.first?.int("pgrp") == 4250)
                     #expect(e.first?.int("termios.c_cc.0") == 0x18)
                     #expect(e.first?.count("termios_locked.c_cc") == 19)
                     #expect(e.first?.int("winsize.ws_col") == 111)
                     #expect(e.first?.int("dev") == 0x19)
                 }),
        CritCase(file: "tty-data.img", magic: .ttyData, critName: "TTY_DATA",
                 write: { w in var d = TtyDataEntry(); d.ttyID = 6; d.data = Data("queued".utf8); try w.append(d) },
                 check: { e in
                     #expect(e.first?.int("tty_id") == 6)
                     #expect(e.first?.string("data") == Data("queued".utf8).base64EncodedString() + "\n")
                 }),
        CritCase(file: "memfd.img", magic: .memfd, critName: "MEMFD_INODE",
                 write: { w in
                     var m = MemfdInodeEntry(); m.name = "memfd:test"; m.uid = 0; m.gid = 0; m.size = 4096
                     m.shmid = 9; m.seals = 0; m.inodeID = 33
                     try w.append(m)
                 },
                 check: { e in #expect(e.first?.string("name") == "memfd:test") }),
        CritCase(file: "files.img", magic: .files, critName: "FILES",
                 write: { w in
                     var o = SkOptsEntry()
                     o.soSndbuf = 212_992; o.soRcvbuf = 212_992; o.soSndTmoSec = 0; o.soSndTmoUsec = 0
                     o.soRcvTmoSec = 2; o.soRcvTmoUsec = 500_000; o.soPasscred = true
                     var u = UnixSkEntry()
                     u.id = 7; u.ino = 0x1234; u.type = 1; u.state = 10; u.flags = 2; u.uflags = 0; u.backlog = 8
                     u.peer = 0; u.fown = FownEntry(); u.fown.uid = 0; u.fown.euid = 0; u.fown.signum = 0
                     u.fown.pidType = 0; u.fown.pid = 0; u.opts = o; u.name = Data("/tmp/l.sock\0".utf8)
                     u.shutdown = .write
                     var perms = FilePermsEntry(); perms.mode = 0o140640; perms.uid = 0; perms.gid = 0; u.filePerms = perms
                     var f = FileEntry(); f.type = .unixsk; f.id = 7; f.usk = u
                     try w.append(f)
                 },
                 check: { e in
                     #expect(e.first?.string("type") == "UNIXSK")
                     #expect(e.first?.int("usk.ino") == 0x1234)
                     #expect(e.first?.string("usk.type") == "STREAM")
                     #expect(e.first?.string("usk.state") == "LISTEN")
                     #expect(e.first?.int("usk.backlog") == 8)
                     #expect(e.first?.string("usk.shutdown") == "WRITE")
                     #expect(e.first?.int("usk.opts.so_rcv_tmo_usec") == 500_000)
                     #expect(e.first?.value("usk.opts.so_passcred") as? Bool == true)
                     #expect(e.first?.int("usk.file_perms.mode") == 0o140640)
                 }),
        CritCase(file: "sk-queues.img", magic: .skQueues, critName: "SK_QUEUES",
                 write: { w in
                     for (id, payload) in [(UInt32(7), Data("hello".utf8)), (8, Data([1, 2, 3]))] {
                         var p = SkPacketEntry(); p.idFor = id; p.length = UInt32(payload.count)
                         try w.append(p)
                         try w.appendRaw(payload)
                     }
                 },
                 check: { e in
                     #expect(e.map { $0.int("id_for") } == [7, 8])
                     #expect(e.map { $0.int("length") } == [5, 3])
                     #expect(e.first?.payload() == Data("hello".utf8))
                 }),
        CritCase(file: "core-4300.img", magic: .core, critName: "CORE",
                 write: { try $0.append(Fixtures.coreWithPosixTimers()) },
                 check: { e in
                     let c = e.first
                     #expect(c?.count("tc.timers.posix") == 2)
                     #expect(c?.int("tc.timers.posix.0.it_id") == 7)
                     #expect(c?.int("tc.timers.posix.0.si_signo") == 37)
                     #expect(c?.int("tc.timers.posix.0.it_sigev_notify") == 4)
                     #expect(c?.int("tc.timers.posix.0.notify_thread_id") == 4243)
                     #expect(c?.int("tc.timers.posix.0.sival_ptr") == 0x3333)
                     #expect(c?.int("tc.timers.posix.0.insec") == 100_000_000)
                     #expect(c?.int("tc.timers.posix.1.clock_id") == 0xffff_fffa)
                     #expect(c?.int("tc.timers.posix.1.overrun") == 3)
                 }),
        CritCase(file: "filelocks.img", magic: .fileLocks, critName: "FILE_LOCKS",
                 write: { w in for l in Fixtures.fileLocks() { try w.append(l) } },
                 check: { e in
                     #expect(e.map { $0.int("flag") } == [2, 1, 4])
                     #expect(e.map { $0.int("type") } == [1, 0, 1])
                     #expect(e.map { $0.int("fd") } == [3, 4, 5])
                     #expect(e[1].int("start") == 100)
                     #expect(e[2].int("len") == 50)
                     #expect(e.first?.int("pid") == 4242)
                 }),
    ] + fdKinds
}
