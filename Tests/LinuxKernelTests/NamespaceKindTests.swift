import Testing
import LinuxKernel

@Suite struct NamespaceKindTests {
    @Test func cloneFlagsAreDistinct() {
        let flags = NamespaceKind.allCases.map(\.cloneFlag)
        #expect(Set(flags).count == flags.count)
        #expect(NamespaceKind.net.cloneFlag.rawValue == 0x4000_0000)
    }

    /// The values linux/sched.h gives; the restorer and CRIU's images depend on them.
    @Test func cloneFlagsHaveTheKernelsValues() {
        let expected: [NamespaceKind: UInt64] = [
            .time: 0x80, .mnt: 0x2_0000, .cgroup: 0x200_0000, .uts: 0x400_0000,
            .ipc: 0x800_0000, .user: 0x1000_0000, .pid: 0x2000_0000, .net: 0x4000_0000,
        ]
        for kind in NamespaceKind.allCases { #expect(kind.cloneFlag.rawValue == expected[kind], "\(kind)") }
        #expect(CloneFlags.newThread.rawValue == 0x5_0f00)
        #expect(CloneFlags.fs.argument == 0x200)
    }

    @Test func forChildrenLinksOnlyForPidAndTime() {
        #expect(NamespaceKind.allCases.filter { $0.forChildrenName != nil } == [.pid, .time])
        #expect(NamespaceKind.pid.forChildrenName == "pid_for_children")
    }
}
