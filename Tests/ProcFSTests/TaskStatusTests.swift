import Foundation
import Testing
@testable import ProcFS

@Suite struct TaskStatusTests {
    static let sample = """
    Name:\tweb worker
    Umask:\t0027
    State:\tS (sleeping)
    Tgid:\t4120
    Ngid:\t0
    Pid:\t4121
    PPid:\t4100
    TracerPid:\t0
    Uid:\t1000\t1001\t1002\t1003
    Gid:\t100\t101\t102\t103
    FDSize:\t64
    Groups:\t4 24 27 
    NStgid:\t4120\t12
    NSpid:\t4121\t13
    NSpgid:\t4100\t1
    NSsid:\t4100\t1
    Kthread:\t0
    VmPeak:\t    3060 kB
    Threads:\t3
    SigQ:\t0/96365
    SigPnd:\t0000000000000000
    ShdPnd:\t0000000000000100
    SigBlk:\t0000000000010000
    SigIgn:\t0000000000001000
    SigCgt:\t0000000180004a02
    CapInh:\t0000000000000000
    CapPrm:\t000001fffeffffff
    CapEff:\t000001fffeffffff
    CapBnd:\t000001fffeffffff
    CapAmb:\t0000000000000000
    NoNewPrivs:\t1
    Seccomp:\t2
    Seccomp_filters:\t3
    Speculation_Store_Bypass:\tthread vulnerable
    Cpus_allowed_list:\t0-1
    voluntary_ctxt_switches:\t12
    """

    @Test func parsesIdentityAndNamespacePids() throws {
        let s = try TaskStatus.parse(Self.sample)
        #expect(s.name == "web worker")
        #expect(s.state == "S")
        #expect(s.tgid == 4120 && s.pid == 4121 && s.ppid == 4100 && s.tracerPid == 0)
        #expect(s.uid == [1000, 1001, 1002, 1003])
        #expect(s.gid == [100, 101, 102, 103])
        #expect(s.groups == [4, 24, 27])
        #expect(s.nsPid == [4121, 13] && s.nsTgid == [4120, 12])
        #expect(s.nsPgid == [4100, 1] && s.nsSid == [4100, 1])
        #expect(s.threads == 3)
        #expect(s.umask == 0o027)
    }

    @Test func parsesSignalAndCapabilityMasks() throws {
        let s = try TaskStatus.parse(Self.sample)
        #expect(s.sigPnd == 0 && s.shdPnd == 0x100 && s.sigBlk == 0x10000 && s.sigIgn == 0x1000)
        #expect(s.sigCgt == 0x1_8000_4a02)
        #expect(s.capPrm == 0x1ff_feff_ffff && s.capEff == s.capPrm && s.capBnd == s.capPrm)
        #expect(s.capInh == 0 && s.capAmb == 0)
        #expect(s.noNewPrivs && s.seccomp == 2 && s.seccompFilters == 3)
    }

    @Test func emptyGroupsAndEscapedName() throws {
        let text = Self.sample
            .replacingOccurrences(of: "Groups:\t4 24 27 ", with: "Groups:\t ")
            .replacingOccurrences(of: "Name:\tweb worker", with: "Name:\ta\\nb\\\\c\td")
        let s = try TaskStatus.parse(text)
        #expect(s.groups == [])
        #expect(s.name == "a\nb\\c\td")
    }

    @Test func missingRequiredLineThrows() {
        let text = Self.sample.replacingOccurrences(of: "PPid:\t4100\n", with: "")
        #expect(throws: ProcFSError(path: "status", reason: "no PPid line")) {
            try TaskStatus.parse(text)
        }
    }

    @Test func readsOwnStatusAndThread() throws {
        let s = try TaskStatus.read(pid: getpid())
        #expect(s.pid == getpid() && s.tgid == getpid() && s.ppid == getppid())
        #expect(s.threads >= 1)
        #expect(s.nsPid.last == getpid())
        let t = try TaskStatus.read(pid: getpid(), tid: getpid())
        #expect(t.pid == getpid())
    }
}
