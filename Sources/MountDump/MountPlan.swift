import Images

/// How each mount of a dumped namespace is made again, decided from the image alone (so
/// the same rules judge a dump before it is written and restore CRIU's images):
///
/// - the root mount is the directory the caller prepared (runc's criu-root);
/// - a mount with an external key is a bind of the host path the caller gives for it;
/// - a mount of a superblock that an earlier mount already shows, from a directory at or
///   below that mount's root, is a bind from there (bind mounts inside the container, a
///   second mount of one tmpfs, runc's read-only binds of /proc/sys...);
/// - otherwise a mount of a file system's root is made fresh (tmpfs then filled from its
///   image), and a mount of a subdirectory of a pseudo file system (a cgroup directory)
///   is made by mounting the whole file system aside and binding the subdirectory;
/// - anything else came from outside the container and cannot be made again.
///
/// Steps come root first, then parents before children and bind sources before binds.
public struct MountPlan {
    public enum Origin: Equatable, Sendable {
        case root
        case external(key: String)
        case fresh(FileSystemType)
        /// The whole file system mounted aside, `path` within it bound here.
        case freshSubtree(FileSystemType, path: String)
        /// A bind of `path` ("" or "/x") below the root of the mount made by step entry `source`.
        case bind(source: Int, path: String)
    }

    public struct Step {
        /// Index into `entries`.
        public let index: Int
        public let origin: Origin
        /// A tmpfs whose contents are restored from its image.
        public let restoresContents: Bool
    }

    public enum Failure: Error, Equatable {
        case noRoot
        case severalRoots([Int])
        case noParent(Int)
        /// From outside the container (a bind of a host path) and not external.
        case outside(Int)
        /// A file system type we cannot make again.
        case unsupported(Int)
        case dependencyCycle([Int])
    }

    public let entries: [MntEntry]
    public let rootIndex: Int
    public let steps: [Step]

    public init(entries: [MntEntry]) throws {
        self.entries = entries
        var byID: [UInt32: Int] = [:]
        for (i, e) in entries.enumerated() { byID[e.mntID] = i }
        let parentless = entries.indices.filter { i in
            entries[i].parentMntID == entries[i].mntID || byID[entries[i].parentMntID] == nil
        }
        let roots = parentless.filter { entries[$0].mountpoint == "/" }
        guard let root = roots.first else { throw Failure.noRoot }
        if roots.count > 1 { throw Failure.severalRoots(roots) }
        if let orphan = parentless.first(where: { $0 != root }) { throw Failure.noParent(orphan) }
        rootIndex = root

        var origins: [Origin] = Array(repeating: .root, count: entries.count)
        var contents = Array(repeating: false, count: entries.count)
        for i in entries.indices where i != root {
            (origins[i], contents[i]) = try Self.origin(of: i, in: entries, root: root)
        }

        // Depth first from the root, children in mount order: how the tree was made.
        var children: [Int: [Int]] = [:]
        for i in entries.indices where i != root { children[byID[entries[i].parentMntID]!, default: []].append(i) }
        var base: [Int] = []
        var stack = [root]
        while let next = stack.popLast() {
            base.append(next)
            stack.append(contentsOf: (children[next] ?? []).reversed())
        }
        var position: [Int: Int] = [:]
        for (p, i) in base.enumerated() { position[i] = p }

        // Made in that order, except that a bind waits for its source.
        var waitsFor: [Int: Set<Int>] = [:]
        for i in entries.indices where i != root {
            var deps: Set<Int> = [byID[entries[i].parentMntID]!]
            if case .bind(let source, _) = origins[i] { deps.insert(source) }
            waitsFor[i] = deps
        }
        var done: Set<Int> = [root]
        var order = [root]
        var pending = base.filter { $0 != root }
        while !pending.isEmpty {
            guard let k = pending.firstIndex(where: { waitsFor[$0]!.isSubset(of: done) }) else {
                throw Failure.dependencyCycle(pending)
            }
            let next = pending.remove(at: k)
            done.insert(next)
            order.append(next)
        }
        steps = order.map { Step(index: $0, origin: origins[$0], restoresContents: contents[$0]) }
    }

    private static func origin(of i: Int, in entries: [MntEntry], root: Int) throws -> (Origin, Bool) {
        let e = entries[i]
        if let key = e.externalKey { return (.external(key: key), false) }
        // An earlier mount (mountinfo lists mounts in the order they were made) of the same
        // superblock whose root holds this one's: prefer a file system root or the container root.
        let candidates = entries.indices.filter { j in
            j != i && (j < i || j == root) && entries[j].rootDev == e.rootDev
                && MountPath.isWithin(e.root, entries[j].root)
        }
        if let source = candidates.first(where: { entries[$0].root == "/" || $0 == root }) ?? candidates.first {
            return (.bind(source: source, path: MountPath.relative(e.root, to: entries[source].root)), false)
        }
        let sameDevice = entries.indices.contains { $0 != i && entries[$0].rootDev == e.rootDev }
        guard let type = FileSystemType.of(e) else {
            throw sameDevice || e.root != "/" ? Failure.outside(i) : Failure.unsupported(i)
        }
        if e.root == "/" { return (.fresh(type), type.kind == .tmpfs) }
        if type.kind == .pseudo { return (.freshSubtree(type, path: e.root), false) }
        throw Failure.outside(i)
    }
}

/// The log's words for an origin: String(describing:) would reflect over the enum (Mirror)
/// for each of a container's ~25 mounts while the tree is frozen.
extension MountPlan.Origin: CustomStringConvertible {
    public var description: String {
        switch self {
        case .root: return "root"
        case .external(let key): return "external \(key)"
        case .fresh(let type): return "fresh \(type.name)"
        case .freshSubtree(let type, let path): return "fresh \(type.name), \(path) bound"
        case .bind(let source, let path): return "bind of step \(source)'s \(path.isEmpty ? "/" : path)"
        }
    }
}
