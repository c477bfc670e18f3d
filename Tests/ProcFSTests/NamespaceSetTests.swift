import Foundation
import Testing
import LinuxKernel
import ProcFS

@Suite struct NamespaceSetTests {
    @Test func parsesLinkTargets() {
        #expect(NamespaceSet.inode(fromLink: "net:[4026531840]", kind: .net) == 4026531840)
        #expect(NamespaceSet.inode(fromLink: "net:[4026531840]", kind: .pid) == nil)
        #expect(NamespaceSet.inode(fromLink: "time:[4026531834]", kind: .time) == 4026531834)
        #expect(NamespaceSet.inode(fromLink: "net:[x]", kind: .net) == nil)
    }

    @Test func externalListsKindsThatDiffer() {
        let host = NamespaceSet(inodes: [.pid: 1, .net: 2, .mnt: 3, .uts: 4])
        var container = host
        container.inodes[.net] = 20
        container.inodes[.mnt] = 30
        #expect(container.external(to: host) == [.net, .mnt])
        #expect(host.external(to: host) == [])
    }

    @Test func readsOwnNamespaces() throws {
        let own = try NamespaceSet.read(pid: getpid())
        for kind in NamespaceKind.allCases where kind != .time {
            #expect(own.inodes[kind] != nil, "no \(kind.rawValue) namespace")
        }
        var st = stat()
        #expect(stat("/proc/self/ns/net", &st) == 0)
        #expect(own.inodes[.net] == UInt64(st.st_ino))
        #expect(try own.external(to: NamespaceSet.read(pid: getpid())) == [])
        #expect(own.forChildren.isEmpty)
    }

    /// Spawns `unshare ARGS` and waits until `ready` holds for its namespaces.
    private func withUnshared(_ args: [String], until ready: (NamespaceSet) -> Bool,
                              _ body: (NamespaceSet) throws -> Void) throws {
        var pid: pid_t = 0
        let all = ["/usr/bin/unshare"] + args
        let argv: [UnsafeMutablePointer<CChar>?] = all.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        try #require(posix_spawn(&pid, all[0], nil, nil, argv, environ) == 0)
        defer { kill(pid, SIGKILL); var status: Int32 = 0; waitpid(pid, &status, 0) }
        var set = try NamespaceSet.read(pid: pid)
        for _ in 0..<200 where !ready(set) {
            usleep(10_000)
            set = try NamespaceSet.read(pid: pid)
        }
        try body(set)
    }

    @Test(.enabled(if: getuid() == 0, "unshare needs root"))
    func seesNamespacesOfAnUnsharedProcess() throws {
        let own = try NamespaceSet.read(pid: getpid())
        try withUnshared(["--net", "--uts", "--pid", "/bin/sleep", "30"],
                         until: { !$0.pendingForChildren.isEmpty }) { child in
            #expect(child.external(to: own) == [.net, .uts])
            #expect(child.pendingForChildren == [.pid])
            #expect(child.forChildren.isEmpty)
        }
    }

    @Test(.enabled(if: getuid() == 0, "unshare needs root"))
    func seesPidNamespaceForChildren() throws {
        let own = try NamespaceSet.read(pid: getpid())
        try withUnshared(["--pid", "--fork", "--kill-child", "/bin/sleep", "30"],
                         until: { $0.forChildren[.pid] != nil }) { parent in
            #expect(parent.external(to: own) == [])
            #expect(parent.forChildren[.pid] != nil && parent.forChildren[.pid] != own.inodes[.pid])
            #expect(parent.pendingForChildren.isEmpty)
        }
    }

    @Test func missingProcessThrows() {
        #expect(throws: (any Error).self) { try NamespaceSet.read(pid: Int32.max) }
    }
}
