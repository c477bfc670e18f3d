#if canImport(Glibc)
import Glibc
#endif
import LinuxKernel

/// The namespace inodes of one task, read from the /proc/PID/ns/ links ("net:[4026531840]").
public struct NamespaceSet: Equatable, Sendable {
    public var inodes: [NamespaceKind: UInt64]
    /// pid_for_children / time_for_children, when they differ from the task's own (after
    /// unshare(CLONE_NEWPID) they name the namespace the next child will get).
    public var forChildren: [NamespaceKind: UInt64]
    /// Kinds whose *_for_children link exists but names no inode yet: the task unshared a
    /// new pid or time namespace and has not forked into it.
    public var pendingForChildren: Set<NamespaceKind>

    public init(inodes: [NamespaceKind: UInt64], forChildren: [NamespaceKind: UInt64] = [:],
                pendingForChildren: Set<NamespaceKind> = []) {
        self.inodes = inodes
        self.forChildren = forChildren
        self.pendingForChildren = pendingForChildren
    }

    /// Kinds the kernel does not have (no such ns file) are left out; any other error throws.
    public static func read(pid: Int32) throws -> NamespaceSet {
        let directory = "/proc/\(pid)/ns"
        guard access(directory, F_OK) == 0 else {
            let code = errno
            throw ProcFSError(path: directory, reason: String(cString: strerror(code)), errno: code)
        }
        var set = NamespaceSet(inodes: [:])
        for kind in NamespaceKind.allCases {
            guard let inode = try readLink("/proc/\(pid)/ns/\(kind.rawValue)", kind: kind) else { continue }
            set.inodes[kind] = inode
            guard let name = kind.forChildrenName else { continue }
            let path = "/proc/\(pid)/ns/\(name)"
            if let child = try readLink(path, kind: kind) {
                if child != inode { set.forChildren[kind] = child }
            } else if isSymlink(path) {
                set.pendingForChildren.insert(kind)
            }
        }
        // every link missing means the process went away after the check above
        guard !set.inodes.isEmpty else {
            throw ProcFSError(path: directory, reason: String(cString: strerror(ESRCH)), errno: ESRCH)
        }
        return set
    }

    /// The inode of one namespace of `pid`; nil when the kernel has no such kind.
    public static func inode(of kind: NamespaceKind, pid: Int32) throws -> UInt64? {
        try readLink(procPath(pid, "ns/\(kind.rawValue)"), kind: kind)
    }

    /// "net:[4026531840]" → 4026531840, when the prefix names `kind`.
    public static func inode(fromLink text: String, kind: NamespaceKind) -> UInt64? {
        let prefix = "\(kind.rawValue):["
        guard text.hasPrefix(prefix), text.hasSuffix("]") else { return nil }
        return UInt64(text.dropFirst(prefix.count).dropLast())
    }

    /// The kinds where this set and `other` are in different namespaces, in allCases order;
    /// e.g. a container's set against the host's gives the namespaces the container owns.
    public func external(to other: NamespaceSet) -> [NamespaceKind] {
        NamespaceKind.allCases.filter { inodes[$0] != other.inodes[$0] }
    }

    private static func isSymlink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    private static func readLink(_ path: String, kind: NamespaceKind) throws -> UInt64? {
        let target: String
        do {
            target = try ProcTree.link(path)
        } catch let error as ProcFSError where error.errno == ENOENT {
            return nil
        }
        guard let inode = inode(fromLink: target, kind: kind) else {
            throw ProcFSError(path: path, reason: "unexpected link target \(target)")
        }
        return inode
    }
}
