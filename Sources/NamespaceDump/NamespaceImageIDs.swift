import Foundation
import LinuxKernel
import Images

/// The small ids that name per-namespace images (utsns-<id>.img, ipcns-var-<id>.img, ...).
/// They must agree with the ids the engine writes into ids-PID.img and inventory.img.
public enum NamespaceImageIDs {
    /// The engine numbers the root task's namespaces from 1 in this order, one id per
    /// distinct inode (Engine/Dump/Dumper.swift, NamespaceIDs).
    static let engineOrder: [NamespaceKind] = [.pid, .net, .ipc, .uts, .mnt, .user, .cgroup, .time]

    /// The ids the engine gives the root task's namespaces.
    public static func forRoot(_ set: NamespaceSet) -> [NamespaceKind: UInt32] {
        var byInode: [UInt64: UInt32] = [:]
        var ids: [NamespaceKind: UInt32] = [:]
        for kind in engineOrder {
            guard let inode = set.inodes[kind] else { continue }
            if let id = byInode[inode] { ids[kind] = id; continue }
            let id = UInt32(byInode.count + 1)
            byInode[inode] = id
            ids[kind] = id
        }
        return ids
    }

    /// The id of the root task's `kind` namespace in a dump: from inventory.img when it is
    /// there, else the id of the one `image` in the directory; nil when the dump has no
    /// image of that kind.
    public static func restoreID(_ kind: NamespaceKind, image: ImageKind, in images: ImageDirectory) throws -> UInt32? {
        if images.exists(.inventory) {
            let inv = try images.readOne(.inventory, as: InventoryEntry.self)
            if inv.hasRootIds, let id = rootID(kind, inv.rootIds), images.exists(ImageName(image, id)) {
                return id
            }
        }
        let ids = images.list(image).compactMap { $0.id.flatMap { UInt32(exactly: $0) } }
        guard ids.count <= 1 else {
            throw CheckpointError(.unsupported, "image directory \(images.path): \(ids.count) \(image) images (\(ids.sorted())); only one \(kind.rawValue) namespace per tree is supported")
        }
        return ids.first
    }

    private static func rootID(_ kind: NamespaceKind, _ ids: TaskKobjIdsEntry) -> UInt32? {
        switch kind {
        case .pid: return ids.hasPidNsID ? ids.pidNsID : nil
        case .net: return ids.hasNetNsID ? ids.netNsID : nil
        case .ipc: return ids.hasIpcNsID ? ids.ipcNsID : nil
        case .uts: return ids.hasUtsNsID ? ids.utsNsID : nil
        case .mnt: return ids.hasMntNsID ? ids.mntNsID : nil
        case .user: return ids.hasUserNsID ? ids.userNsID : nil
        case .cgroup: return ids.hasCgroupNsID ? ids.cgroupNsID : nil
        case .time: return ids.hasTimeNsID ? ids.timeNsID : nil
        }
    }
}
