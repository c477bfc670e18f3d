// A runc container in a user namespace of its own (as Kubernetes user-namespaced pods run
// it: uid/gid mappings in config.json), checkpointed and restored with our binary as runc's
// engine: it keeps counting, keeps its maps, and every namespace runc made inside the user
// namespace is owned by the restored one (NS_GET_USERNS from outside).

import Foundation
import LinuxKernel
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct UserNamespaceContainerTests {
    static let mappings: [[String: Int]] = [["containerID": 0, "hostID": 0, "size": 1],
                                            ["containerID": 1, "hostID": 100_001, "size": 65535]]

    /// Each namespace of `pid` but user: whether the user namespace of `pid` owns it.
    static func owned(_ pid: Int32) throws -> [String: Bool] {
        func inode(_ fd: Int32) -> UInt64 { var st = stat(); fstat(fd, &st); return UInt64(st.st_ino) }
        let user = open("/proc/\(pid)/ns/user", O_RDONLY | O_CLOEXEC)
        defer { close(user) }
        var out: [String: Bool] = [:]
        for kind in ["pid", "net", "uts", "ipc", "mnt"] {
            let ns = open("/proc/\(pid)/ns/\(kind)", O_RDONLY | O_CLOEXEC)
            defer { close(ns) }
            let owner = try Syscall.rawFd("NS_GET_USERNS of \(kind)", SyscallNumber.ioctl, Int(ns), 0xb701)
            defer { close(owner) }
            out[kind] = inode(owner) == inode(user)
        }
        return out
    }

    @Test func checkpointAndRestoreInAUserNamespace() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Env.binary), "no engine binary at \(Env.binary)")
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = scratch.newID()
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: countingScript()) { config in
            var linux = config["linux"] as! [String: Any]
            var namespaces = linux["namespaces"] as! [[String: Any]]
            namespaces.append(["type": "user"])
            linux["namespaces"] = namespaces
            linux["uidMappings"] = Self.mappings
            linux["gidMappings"] = Self.mappings
            config["linux"] = linux
        }
        try bundle.run(id: id)
        let c = Runc(id: id)
        try #require(waitFor(10) { bundle.count.count >= 3 }, "the container does not count: \(tail(bundle.path + "/run.err"))")
        let original = try #require(c.pid)
        let maps = readFile("/proc/\(original)/uid_map")
        let before = try Self.owned(original)
        #expect(before.values.allSatisfy { $0 }, "runc's namespaces: \(before)")

        let images = scratch.sub("images"), work = scratch.sub("work")
        let dump = c.checkpoint(images: images, work: work)
        try #require(dump.ok, "checkpoint: \(dump)\n\(tail(work + "/dump.log"))")
        try #require(waitFor(5) { c.status == nil }, "runc still knows \(id) after the checkpoint")
        let last = bundle.lastCount, written = bundle.count.count

        let restore = c.restore(bundle: bundle.path, images: images, work: scratch.sub("work-restore"))
        try #require(restore.ok, "restore: \(restore)\n\(tail(scratch.sub("work-restore") + "/restore.log"))")
        let restored = try #require(c.pid)
        #expect(readFile("/proc/\(restored)/uid_map") == maps && maps != nil)
        let owned = try Self.owned(restored)
        #expect(owned.count == 5 && owned.values.allSatisfy { $0 }, "restored namespaces: \(owned)")
        #expect(waitFor(10) { bundle.count.count >= written + 3 }, "no counting after restore: \(bundle.count.suffix(5))")
        let resumed = bundle.count.dropFirst(written)
        #expect(resumed.first == last + 1 && consecutive(resumed, from: last + 1), "restored count: \(Array(resumed)), last \(last)")
        let (kill, delete, stopped) = c.killAndDelete()
        #expect(kill.ok && stopped && delete.ok, "teardown: \(kill)\n\(delete)")
    }
}
