import ProcFS

/// The mounts of one mount namespace linked parent to child by mount ID.
public struct MountTree: Sendable {
    /// In mountinfo order, which is the order the mounts were made.
    public let mounts: [MountInfoEntry]
    private let byID: [Int: Int]
    private let childIndices: [Int: [Int]]

    public init(_ mounts: [MountInfoEntry]) {
        self.mounts = mounts
        var byID: [Int: Int] = [:]
        for (index, mount) in mounts.enumerated() { byID[mount.mountID] = index }
        var childIndices: [Int: [Int]] = [:]
        for (index, mount) in mounts.enumerated()
        where mount.parentID != mount.mountID && byID[mount.parentID] != nil {
            childIndices[mount.parentID, default: []].append(index)
        }
        self.byID = byID
        self.childIndices = childIndices
    }

    public static func read(pid: Int32) throws -> MountTree {
        MountTree(try MountInfoEntry.read(pid: pid))
    }

    /// Mounts whose parent is not in this namespace's view (the root, usually one).
    public var roots: [MountInfoEntry] {
        mounts.filter { $0.parentID == $0.mountID || byID[$0.parentID] == nil }
    }

    public func mount(id: Int) -> MountInfoEntry? { byID[id].map { mounts[$0] } }

    public func parent(of mount: MountInfoEntry) -> MountInfoEntry? {
        mount.parentID == mount.mountID ? nil : self.mount(id: mount.parentID)
    }

    /// Direct children in mount order, so a mount stacked over another comes after it.
    public func children(of mount: MountInfoEntry) -> [MountInfoEntry] { children(of: mount.mountID) }

    public func children(of mountID: Int) -> [MountInfoEntry] {
        (childIndices[mountID] ?? []).map { mounts[$0] }
    }

    /// Depth first from each root, parents before children, siblings in mount order: an
    /// order in which the mounts can be made again. Mounts caught in a parent cycle, which
    /// no root reaches, come last in mountinfo order rather than get lost.
    public var ordered: [MountInfoEntry] {
        var visited = Set<Int>()
        var order: [MountInfoEntry] = []
        order.reserveCapacity(mounts.count)
        func visit(_ index: Int) {
            var stack = [index]
            while let next = stack.popLast() {
                guard visited.insert(next).inserted else { continue }
                order.append(mounts[next])
                stack.append(contentsOf: (childIndices[mounts[next].mountID] ?? []).reversed())
            }
        }
        for (index, mount) in mounts.enumerated()
        where mount.parentID == mount.mountID || byID[mount.parentID] == nil {
            visit(index)
        }
        for index in mounts.indices where !visited.contains(index) { visit(index) }
        return order
    }
}
