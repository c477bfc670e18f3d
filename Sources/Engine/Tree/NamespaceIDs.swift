import LinuxKernel
import Images
import ProcFS

/// Task kobject ids for ids-PID.img and inventory.img's root_ids: per-process ids for mm,
/// files, fs and sighand, and a small id per namespace inode, as CRIU numbers them: from 1,
/// one per distinct inode, a task's kinds taken in `order`. The per-namespace images
/// (utsns-<id>.img, ipcns-var-<id>.img, ...) are named by the same ids, so the modules
/// that write them number through this too.
public struct NamespaceIDs {
    public static let order: [NamespaceKind] = [.pid, .net, .ipc, .uts, .mnt, .user, .cgroup, .time]

    private var byInode: [UInt64: UInt32] = [:]

    public init() {}

    /// The ids of the namespaces in `set`, numbering the inodes not seen before.
    public mutating func ids(for set: NamespaceSet) -> [NamespaceKind: UInt32] {
        var ids: [NamespaceKind: UInt32] = [:]
        for kind in Self.order {
            guard let inode = set.inodes[kind] else { continue }
            if let id = byInode[inode] { ids[kind] = id; continue }
            let id = UInt32(byInode.count + 1)
            byInode[inode] = id
            ids[kind] = id
        }
        return ids
    }

    /// The id of the namespace with inode `inode`, if a task of the tree is in it.
    public func id(ofInode inode: UInt64) -> UInt32? { byInode[inode] }

    /// ids-PID.img of task `pid`: its mm, files, fs and sighand ids are `kobj` (the pid in
    /// the tree's namespace, which also names fdinfo-ID.img, as CRIU reads it).
    mutating func ids(for pid: Int32, kobj: Int32) throws -> TaskKobjIdsEntry {
        var e = TaskKobjIdsEntry()
        let k = UInt32(kobj)
        e.vmID = k; e.filesID = k; e.fsID = k; e.sighandID = k
        for (kind, id) in ids(for: try NamespaceSet.read(pid: pid)) { e[namespace: kind] = id }
        return e
    }
}
