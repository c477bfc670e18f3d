import Foundation
import Testing
import CgroupDump

@Suite struct CgroupMembershipTests {
    static let sample = """
    12:name=systemd:/user.slice/user-0.slice/session-1.scope
    4:memory:/docker/abc
    2:cpu,cpuacct:/docker/abc
    0::/system.slice/odd:name.service

    """

    @Test func parsesV1NamedAndV2Lines() throws {
        let lines = try CgroupMembership.parse(Self.sample)
        #expect(lines.count == 4)
        #expect(lines[0].hierarchyID == 12 && lines[0].name == "systemd")
        #expect(lines[0].path == "/user.slice/user-0.slice/session-1.scope")
        #expect(lines[1] == CgroupMembership(hierarchyID: 4, controllers: ["memory"], path: "/docker/abc"))
        #expect(lines[2].controllers == ["cpu", "cpuacct"] && !lines[2].isUnified)
        #expect(lines[3].isUnified && lines[3].controllers.isEmpty)
        #expect(lines[3].path == "/system.slice/odd:name.service")
    }

    @Test func rejectsBadLines() {
        #expect(throws: (any Error).self) { try CgroupMembership.parse("memory:/x\n") }
        #expect(throws: (any Error).self) { try CgroupMembership.parse("x::/\n") }
    }

    @Test func readsOwnCgroups() throws {
        let own = try CgroupMembership.read(pid: getpid())
        #expect(!own.isEmpty)
        #expect(own.allSatisfy { $0.path.hasPrefix("/") })
    }
}
