import Foundation
import CShim
import LinuxKernel
import Images

/// utsns-<id>.img: the host and domain names of a uts namespace.
public enum UTSNamespace {
    /// The names as the tasks of `pid`'s uts namespace see them.
    public static func read(pid: Int32) throws -> UtsnsEntry {
        try NamespaceJoin.run(in: pid, [.uts]) {
            var e = UtsnsEntry()
            e.nodename = try Sysctl.read("kernel/hostname")
            e.domainname = try Sysctl.read("kernel/domainname")
            return e
        }
    }

    public static func dump(pid: Int32, id: UInt32, images: ImageDirectory, log: Log) throws {
        let e = try read(pid: pid)
        log.info("uts namespace of pid \(pid): nodename \(e.nodename), domainname \(e.domainname)")
        try images.write(.utsns(id), [e])
    }

    /// Sets the names in `pid`'s uts namespace (never the restorer's own: the caller checks).
    public static func restore(pid: Int32, id: UInt32, images: ImageDirectory, log: Log) throws {
        let e = try images.readOne(.utsns(id), as: UtsnsEntry.self)
        try NamespaceJoin.run(in: pid, [.uts]) {
            try set(e.nodename, syscall: SyscallNumber.sethostname, what: "hostname", pid: pid)
            try set(e.domainname, syscall: SyscallNumber.setdomainname, what: "domainname", pid: pid)
        }
        log.info("uts namespace of pid \(pid): nodename \(e.nodename), domainname \(e.domainname) restored")
    }

    private static func set(_ name: String, syscall nr: Int, what: String, pid: Int32) throws {
        let bytes = Array(name.utf8)
        try bytes.withUnsafeBufferPointer {
            _ = try Syscall.raw("set \(what) \"\(name)\" in the uts namespace of pid \(pid)", nr, Int(bitPattern: $0.baseAddress), bytes.count)
        }
    }
}
