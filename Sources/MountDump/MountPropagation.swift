import LinuxKernel
import Images

/// Gives the rebuilt mounts the recorded peer groups and masters, through their fds
/// (after pivot_root: a shared new root could not have been pivoted into).
///
/// A group is made by sharing its widest member and putting the others in its group
/// (move_mount MOVE_MOUNT_SET_GROUP, which also copies the member's master); a slave of a
/// group inside the tree is first put in that group, then made a slave. A master outside
/// the tree (the host's group a runc container's mounts are slaves of) is kept as the
/// bind inherited it from the host, since the namespace started as a slave of the host's.
struct MountPropagation {
    let entries: [MntEntry]
    /// Entry indices in the order the mounts were made.
    let order: [Int]
    let mounted: [Int: Int32]
    let log: Log

    func apply() throws {
        var groups: [UInt32: [Int]] = [:]
        var groupOrder: [UInt32] = []
        for i in order {
            guard let g = shared(i) else { continue }
            if groups[g] == nil { groupOrder.append(g) }
            groups[g, default: []].append(i)
        }
        func internalMaster(_ i: Int) -> UInt32? {
            guard let m = master(i), groups[m] != nil else { return nil }
            return m
        }
        // The widest member: every other member's root lies within it, as SET_GROUP needs.
        var leader: [UInt32: Int] = [:]
        for (g, members) in groups {
            leader[g] = members.min { entries[$0].root.count < entries[$1].root.count }
        }

        // Private to start with, wherever the wanted state is not what the mount inherited.
        for i in order {
            let keepsInherited = master(i) != nil && internalMaster(i) == nil && (shared(i).map { leader[$0] == i } ?? true)
            if !keepsInherited { try set(i, .private) }
        }

        var done: Set<UInt32> = []
        var pending = groupOrder
        while !pending.isEmpty {
            guard let k = pending.firstIndex(where: { g in internalMaster(leader[g]!).map(done.contains) ?? true }) else {
                throw CheckpointError(.unsupported, "mount peer groups \(pending) are masters of each other")
            }
            let g = pending.remove(at: k)
            let first = leader[g]!
            if let m = internalMaster(first) {
                try join(first, group: m, members: groups[m]!)
                try set(first, .slave)
            }
            try set(first, .shared)
            for other in groups[g]! where other != first {
                try join(other, group: g, members: [first])
            }
            done.insert(g)
        }
        for i in order where shared(i) == nil {
            guard let m = internalMaster(i) else { continue }
            try join(i, group: m, members: groups[m]!)
            try set(i, .slave)
        }
        for i in order where entries[i].mountFlags.contains(.unbindable) { try set(i, .unbindable) }
    }

    private func shared(_ i: Int) -> UInt32? {
        entries[i].hasSharedID && entries[i].sharedID != 0 ? entries[i].sharedID : nil
    }

    private func master(_ i: Int) -> UInt32? {
        entries[i].hasMasterID && entries[i].masterID != 0 ? entries[i].masterID : nil
    }

    private func set(_ i: Int, _ propagation: MountFlags) throws {
        try MountCall.setAttributes(mounted[i]!, propagation: propagation,
                                    "make \(entries[i].mountpoint) \(Self.name(propagation))")
    }

    /// Puts mount `i` in `group` from a member whose root holds its root.
    private func join(_ i: Int, group: UInt32, members: [Int]) throws {
        let e = entries[i]
        guard let from = members.first(where: { entries[$0].rootDev == e.rootDev && MountPath.isWithin(e.root, entries[$0].root) }) else {
            throw CheckpointError(.unsupported, "mount \(e.mountpoint): no mount of peer group \(group) shows its root \(e.root), so it cannot join the group")
        }
        try MountCall.setGroup(from: mounted[from]!, to: mounted[i]!,
                               "put \(e.mountpoint) in the peer group of \(entries[from].mountpoint)")
    }

    private static func name(_ p: MountFlags) -> String {
        switch p {
        case .shared: return "shared"
        case .slave: return "a slave"
        case .unbindable: return "unbindable"
        default: return "private"
        }
    }
}
