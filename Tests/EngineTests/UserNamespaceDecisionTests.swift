import Foundation
import Testing
import LinuxKernel
import Images
import ProcFS
@testable import Engine

/// The decisions behind a user-namespaced tree without a process: id translation through
/// the maps, the image, and what setCreds injects inside (UserNamespaceWorkloadTests prove
/// the same on real processes).
@Suite("user namespace decisions")
struct UserNamespaceDecisionTests {
    static let userns = UserNamespace(
        uidMap: [.init(first: 0, lowerFirst: 0, count: 1), .init(first: 1, lowerFirst: 100_001, count: 999)],
        gidMap: [.init(first: 0, lowerFirst: 0, count: 1), .init(first: 1000, lowerFirst: 2000, count: 1)],
        setgroupsDenied: false)

    @Test("host ids read as the tasks see them; ids the maps leave out read as the overflow id")
    func translation() {
        var c = RestoreDecisionTests.creds(uid: 0, caps: 0x1ff)
        c.uid = 100_500; c.euid = 0; c.suid = 7; c.gid = 2000; c.groups = [0, 2000, 5]
        let inside = Self.userns.inside(c)
        #expect([inside.uid, inside.euid, inside.suid] == [500, 0, 65534])
        #expect(inside.gid == 1000 && inside.groups == [0, 1000, 65534])
        #expect(UserNamespace.host(999, Self.userns.uidMap) == 100_999)
        #expect(UserNamespace.host(1000, Self.userns.uidMap) == nil)
    }

    @Test("the image: setgroups allow leaves field 101 out (CRIU's bytes), deny keeps it; both read back the same")
    func image() throws {
        let allow = Self.userns.entry
        #expect(!allow.hasSetgroupsDeny)
        #expect(UserNamespace(allow) == Self.userns)
        var denied = Self.userns
        denied.setgroupsDenied = true
        let bytes = try denied.entry.serializedBytes() as [UInt8]
        #expect(UserNamespace(try UsernsEntry(serializedBytes: bytes)) == denied)
        #expect(bytes.count > (try allow.serializedBytes() as [UInt8]).count)
    }

    @Test("inside a user namespace credentials are set even when the image says 0, and not setgroups when the groups are in place")
    func credentials() throws {
        var ours = try TaskStatus.read(pid: getpid())
        ours.capEff = 0x1ff; ours.capPrm = 0x1ff; ours.capInh = 0; ours.capBnd = 0x1ff; ours.capAmb = 0
        let root = RecordingTask()
        try root.setCreds(RestoreDecisionTests.creds(uid: 0, caps: 0x1ff), on: 77, restorer: ours, always: true, groupsInPlace: true)
        #expect(root.numbers == [SyscallNumber.prctl, SyscallNumber.setresgid, SyscallNumber.setresuid, SyscallNumber.capset, SyscallNumber.prctl])
        #expect(Array(root.calls[2].args[0...2]) == [0, 0, 0])
    }
}
