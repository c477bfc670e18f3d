import Foundation
import SystemTestSupport
import Testing
import LinuxKernel
import Images
import NamespaceDump
import ProcFS
#if canImport(Glibc)
import Glibc
#endif

/// uts and ipc namespaces dumped from a real `unshare` process and restored into a fresh one.
@Suite("uts and ipc namespaces", .serialized)
struct UTSAndIPCTests {
    static let sysctls = ["kernel/shmmni", "kernel/msgmnb", "kernel/sem", "fs/mqueue/queues_max", "kernel/shm_next_id"]

    static func source(_ helper: String) throws -> Sleeper {
        try Sleeper(["/usr/bin/unshare", "--uts", "--ipc", "sh", "-c", """
            set -e
            hostname ctr1
            echo dom1 > /proc/sys/kernel/domainname
            echo 1234 > /proc/sys/kernel/shmmni
            echo 20000 > /proc/sys/kernel/msgmnb
            echo "250 32000 32 128" > /proc/sys/kernel/sem
            echo 77 > /proc/sys/fs/mqueue/queues_max
            \(helper) setup
            echo 500 > /proc/sys/kernel/shm_next_id
            echo ready
            exec sleep 1000
            """])
    }

    static func freshTarget() throws -> Sleeper {
        try Sleeper(["/usr/bin/unshare", "--uts", "--ipc", "sh", "-c", "echo ready; exec sleep 1000"])
    }

    static func view(_ pid: Int32, helper: String) throws -> [String: String] {
        var v: [String: String] = [:]
        v["hostname"] = try must(["/usr/bin/nsenter", "-t", "\(pid)", "-u", "hostname"])
        v["domainname"] = try must(["/usr/bin/nsenter", "-t", "\(pid)", "-u", "cat", "/proc/sys/kernel/domainname"])
        for s in sysctls {
            v[s] = try must(["/usr/bin/nsenter", "-t", "\(pid)", "-i", "cat", "/proc/sys/" + s])
        }
        v["objects"] = try must(["/usr/bin/nsenter", "-t", "\(pid)", "-i", helper, "show"])
        return v
    }

    @Test("hostname, sysctls, shm contents, semaphores and messages survive")
    func roundTrip() throws {
        let helper = try Helper.path()
        let scratch = try Scratch()
        let src = try Self.source(helper)
        defer { src.stop() }
        let before = try Self.view(src.pid, helper: helper)
        #expect(before["hostname"] == "ctr1\n")
        #expect(before["objects"]?.contains("shm 1 key=0x1234 size=10000 mode=640 uid=1000 gid=1001") == true)

        let kinds = try NamespaceImagesDump().dump(rootPid: src.pid, images: scratch.images, log: .silent)
        #expect(kinds == [.ipc, .uts])
        let ids = NamespaceImageIDs.forRoot(try NamespaceSet.read(pid: src.pid))
        let uts = try #require(ids[.uts]), ipc = try #require(ids[.ipc])
        for name in [ImageName.utsns(uts), .ipcnsVar(ipc), .ipcnsShm(ipc), .ipcnsSem(ipc), .ipcnsMsg(ipc)] {
            #expect(scratch.images.exists(name), "\(name) written")
        }
        src.stop()

        let dst = try Self.freshTarget()
        defer { dst.stop() }
        let ext = NamespaceImagesDump()
        #expect(try ext.namespaceFlags(images: scratch.images) == NamespaceKind.uts.cloneFlag.union(NamespaceKind.ipc.cloneFlag).rawValue)
        try ext.setUp(rootPid: dst.pid, images: scratch.images, log: .silent)
        let after = try Self.view(dst.pid, helper: helper)
        for key in before.keys.sorted() {
            #expect(after[key] == before[key], "\(key)")
        }
        #expect(after["kernel/shm_next_id"] == "500\n")
        // our own namespaces are untouched
        #expect(try must(["/usr/bin/hostname"]) != "ctr1\n")
    }

    @Test("crit decodes the images, payloads included")
    func critReadsImages() throws {
        let helper = try Helper.path()
        let scratch = try Scratch()
        let src = try Self.source(helper)
        defer { src.stop() }
        try NamespaceImagesDump().dump(rootPid: src.pid, images: scratch.images, log: .silent)
        let ids = NamespaceImageIDs.forRoot(try NamespaceSet.read(pid: src.pid))
        let ipc = try #require(ids[.ipc]), uts = try #require(ids[.uts])
        let utsJSON = try critDecode(scratch.file(.utsns(uts)))
        let utsEntry = try #require((utsJSON["entries"] as? [[String: Any]])?.first)
        #expect(utsEntry["nodename"] as? String == "ctr1")
        let shm = try critDecode(scratch.file(.ipcnsShm(ipc)))
        #expect((shm["entries"] as? [Any])?.count == 2)
        let sem = try critDecode(scratch.file(.ipcnsSem(ipc)))
        #expect((sem["entries"] as? [Any])?.count == 1)
        let msg = try critDecode(scratch.file(.ipcnsMsg(ipc)))
        #expect((msg["entries"] as? [Any])?.count == 2)
        let v = try critDecode(scratch.file(.ipcnsVar(ipc)))
        let ventry = try #require((v["entries"] as? [[String: Any]])?.first)
        #expect((ventry["shm_ctlmni"] as? NSNumber)?.intValue == 1234)
    }

    @Test("contents read back from the images equal what the namespace holds")
    func loadMatchesRead() throws {
        let helper = try Helper.path()
        let scratch = try Scratch()
        let src = try Self.source(helper)
        defer { src.stop() }
        let live = try IPCNamespace.read(pid: src.pid)
        try IPCNamespace.dump(pid: src.pid, id: 9, images: scratch.images, log: .silent)
        let loaded = try IPCNamespace.load(id: 9, images: scratch.images)
        #expect(loaded.segments == live.segments)
        #expect(loaded.semaphores == live.semaphores)
        #expect(loaded.queues == live.queues)
        #expect(loaded.variables == live.variables)
        let big = try #require(live.segments.first { $0.desc.key == 0x1234 })
        #expect(big.contents.count == 10000 && big.contents[10] == UInt8(truncatingIfNeeded: 10 * 7 + 3))
        #expect(live.semaphores.first?.values == [1, 5, 9])
        #expect(live.queues.first { $0.desc.key == 0x3456 }?.messages.map(\.type) == [1, 2, 7])
    }

    @Test("a task in the restorer's own namespaces is refused: the host is never renamed")
    func refusesHostNamespaces() throws {
        let helper = try Helper.path()
        let scratch = try Scratch()
        let src = try Self.source(helper)
        defer { src.stop() }
        try NamespaceImagesDump().dump(rootPid: src.pid, images: scratch.images, log: .silent)
        let host = try Sleeper(["/bin/sh", "-c", "echo ready; exec sleep 1000"])
        defer { host.stop() }
        let hostname = try must(["/usr/bin/hostname"])
        #expect(throws: CheckpointError.self) {
            try NamespaceImagesDump().setUp(rootPid: host.pid, images: scratch.images, log: .silent)
        }
        #expect(try must(["/usr/bin/hostname"]) == hostname)
    }

    @Test("a restore into a namespace that already holds the ids fails and names the object")
    func occupiedNamespace() throws {
        let helper = try Helper.path()
        let scratch = try Scratch()
        let src = try Self.source(helper)
        defer { src.stop() }
        try NamespaceImagesDump().dump(rootPid: src.pid, images: scratch.images, log: .silent)
        let dst = try Sleeper(["/usr/bin/unshare", "--uts", "--ipc", "sh", "-c", "\(helper) setup; echo ready; exec sleep 1000"])
        defer { dst.stop() }
        let error = #expect(throws: CheckpointError.self) {
            try NamespaceImagesDump().setUp(rootPid: dst.pid, images: scratch.images, log: .silent)
        }
        #expect(error?.message.contains("shm") == true || error?.message.contains("File exists") == true)
    }

    @Test("a truncated shm image is a one-line error naming the file")
    func truncatedImage() throws {
        let helper = try Helper.path()
        let scratch = try Scratch()
        let src = try Self.source(helper)
        defer { src.stop() }
        try IPCNamespace.dump(pid: src.pid, id: 3, images: scratch.images, log: .silent)
        let path = scratch.file(.ipcnsShm(3))
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 5000).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: CheckpointError.self) { try IPCNamespace.load(id: 3, images: scratch.images) }
        #expect(error?.message.contains(path) == true)
        #expect(error?.message.contains("\n") == false)
    }
}
