import Foundation
import CShim
import LinuxKernel
import Images

/// A network namespace the caller owns (runc's config.json path, passed to CRIU as
/// external net[INODE]:KEY): nothing of it is dumped, netns-ID.img names only its key, and
/// at restore the root joins the namespace the caller hands over as inherit_fd KEY.
extension NetNamespace {
    public static func dumpExternal(pid: Int32, id: UInt32, key: String, images: ImageDirectory, log: Log) throws {
        var e = NetnsEntry()
        e.extKey = key
        try images.write(.netns(id), [e])
        log.info("net namespace of pid \(pid): external, key \(key); not dumped")
    }

    /// The key of the dump's net namespace `id` when it was external.
    public static func externalKey(id: UInt32, images: ImageDirectory) throws -> String? {
        let entries = try images.read(.netns(id), as: NetnsEntry.self)
        guard let e = entries.first, e.hasExtKey, !e.extKey.isEmpty else { return nil }
        return e.extKey
    }

    /// On the thread that clones the root: enter the namespace behind `fd`.
    public static func join(key: String, fd: Int32, log: Log) throws {
        try Syscall.raw("setns into the external net namespace \(key) (inherit_fd \(fd))", SyscallNumber.setns, Int(fd), CloneFlags.newNet.argument)
        log.info("the root joins the external net namespace \(key)")
    }
}
