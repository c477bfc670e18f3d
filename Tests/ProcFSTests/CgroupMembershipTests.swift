import Foundation
import Testing
import ProcFS

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

    @Test func parsesV1ControllerListsAndV2Root() throws {
        let lines = try CgroupMembership.parse("7:net_cls,net_prio:/\n3:freezer:/a/b\n0::/\n")
        #expect(lines[0].controllers == ["net_cls", "net_prio"] && lines[0].path == "/" && lines[0].name == nil)
        #expect(lines[1] == CgroupMembership(hierarchyID: 3, controllers: ["freezer"], path: "/a/b"))
        #expect(lines[2].isUnified && lines[2].path == "/")
        #expect(try CgroupMembership.parse("").isEmpty)
    }

    @Test func missingProcessNamesTheFile() {
        do {
            _ = try CgroupMembership.read(pid: Int32.max)
            Issue.record("read a missing process")
        } catch let error as ProcFSError {
            #expect(error.path == "/proc/\(Int32.max)/cgroup" && error.errno == ENOENT)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
