import Foundation
import LinuxKernel
import Images
import ProcFS

/// The user namespace a dumped tree runs in, one level below the dumper's: its uid and gid
/// maps (userns-ID.img, as CRIU writes them) and whether setgroups(2) is denied in it (a
/// field of ours in the same image). Ids inside are what the tree's tasks see; "host" ids
/// are the dumper's (the namespace's parent), which the maps translate to.
public struct UserNamespace: Equatable {
    public struct Extent: Equatable {
        public var first: UInt32
        public var lowerFirst: UInt32
        public var count: UInt32
    }

    public var uidMap: [Extent]
    public var gidMap: [Extent]
    public var setgroupsDenied: Bool

    /// What a task sees for an id its namespace does not map (/proc/sys/kernel/overflowuid).
    static let overflowID: UInt32 = 65534

    /// The maps of `pid`'s user namespace as read from its parent (our own namespace).
    public static func read(pid: Int32) throws -> UserNamespace {
        func map(_ name: String) throws -> [Extent] {
            try readProcFile("/proc/\(pid)/\(name)").split(separator: "\n").map { line in
                let n = line.split(separator: " ").compactMap { UInt32($0) }
                guard n.count == 3 else { throw CheckpointError(.kernel, "/proc/\(pid)/\(name): unexpected line \"\(line)\"") }
                return Extent(first: n[0], lowerFirst: n[1], count: n[2])
            }
        }
        let setgroups = try readProcFile("/proc/\(pid)/setgroups").trimmingCharacters(in: .whitespacesAndNewlines)
        return UserNamespace(uidMap: try map("uid_map"), gidMap: try map("gid_map"), setgroupsDenied: setgroups == "deny")
    }

    /// A host id as the tree sees it; unmapped ids read as the overflow id, as in the kernel.
    static func inside(_ host: UInt32, _ map: [Extent]) -> UInt32 {
        guard let e = map.first(where: { host >= $0.lowerFirst && UInt64(host) < UInt64($0.lowerFirst) + UInt64($0.count) }) else {
            return overflowID
        }
        return e.first + (host - e.lowerFirst)
    }

    /// The host id behind an id inside, nil when the map does not name it.
    static func host(_ inside: UInt32, _ map: [Extent]) -> UInt32? {
        guard let e = map.first(where: { inside >= $0.first && UInt64(inside) < UInt64($0.first) + UInt64($0.count) }) else {
            return nil
        }
        return e.lowerFirst + (inside - e.first)
    }

    /// Credentials read from /proc (host ids) as the tasks see them: CRIU keeps a task's
    /// ids in its own namespace, which is also where the restore sets them.
    func inside(_ c: CredsEntry) -> CredsEntry {
        var t = c
        t.uid = Self.inside(c.uid, uidMap); t.euid = Self.inside(c.euid, uidMap)
        t.suid = Self.inside(c.suid, uidMap); t.fsuid = Self.inside(c.fsuid, uidMap)
        t.gid = Self.inside(c.gid, gidMap); t.egid = Self.inside(c.egid, gidMap)
        t.sgid = Self.inside(c.sgid, gidMap); t.fsgid = Self.inside(c.fsgid, gidMap)
        t.groups = c.groups.map { Self.inside($0, gidMap) }
        return t
    }

}

extension UserNamespace {
    init(_ e: UsernsEntry) {
        func extents(_ m: [UidGidExtent]) -> [Extent] { m.map { Extent(first: $0.first, lowerFirst: $0.lowerFirst, count: $0.count) } }
        uidMap = extents(e.uidMap)
        gidMap = extents(e.gidMap)
        setgroupsDenied = e.setgroupsDeny
    }

    var entry: UsernsEntry {
        func extents(_ m: [Extent]) -> [UidGidExtent] {
            m.map { x in var e = UidGidExtent(); e.first = x.first; e.lowerFirst = x.lowerFirst; e.count = x.count; return e }
        }
        var e = UsernsEntry()
        e.uidMap = extents(uidMap)
        e.gidMap = extents(gidMap)
        // Left out when "allow" (the kernel's default), so such an image is CRIU's byte for byte.
        if setgroupsDenied { e.setgroupsDeny = true }
        return e
    }

    /// The root task's user namespace in a dump, when the tree had one of its own.
    static func load(_ images: ImageDirectory) throws -> UserNamespace? {
        guard let id = try images.rootTaskIds()?[namespace: .user], images.exists(.userns(id)) else { return nil }
        return UserNamespace(try images.readOne(.userns(id), as: UsernsEntry.self))
    }
}
