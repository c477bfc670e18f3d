import Foundation
import LinuxKernel
import Images

/// One dump as its extensions see it: the seized tree, the image directory being written,
/// the options and the log.
public struct DumpSession {
    public let tree: FrozenTree
    public let images: ImageDirectory
    public let options: DumpOptions
    public let log: Log

    public init(tree: FrozenTree, images: ImageDirectory, options: DumpOptions, log: Log) {
        self.tree = tree
        self.images = images
        self.options = options
        self.log = log
    }
}

/// What the modules above the engine (namespaces, cgroups, mounts) add to a dump. The
/// engine calls every extension while the whole tree is seized, after the process images
/// are written and before inventory.img marks the dump complete.
public protocol DumpExtension {
    func dump(_ session: DumpSession) throws
}

/// What the modules above the engine add to a restore. Each call gets the restore's
/// session: its options, log and image directory, the root task once it exists, the pty
/// reservations, and `onRollBack` for what an extension makes outside the tree's tasks.
public protocol RestoreExtension {
    /// CLONE_NEW* flags the root task must be created with (namespaces the tree owned).
    func namespaceFlags(_ session: RestoreSession) throws -> UInt64
    /// Called when the root task exists, stopped, in its new namespaces (`session.rootPid`
    /// as the restorer sees it), before any task's memory or files are restored: the place
    /// to build the mount tree, set the hostname, recreate IPC objects, join cgroups.
    func setUp(_ session: RestoreSession) throws
    /// Called after a failed restore, once every created task is dead.
    func rollBack(_ session: RestoreSession)
    /// Called on a thread of its own that clones the root task right after: the place to
    /// enter what no clone flag can create with the right contents (a time namespace
    /// whose offsets must be written before its first task starts).
    func prepareRootClone(_ session: RestoreSession) throws
    /// CLONE_NEW* namespaces that prepareRootClone joins (an existing namespace the
    /// caller hands over): the root is created without these flags.
    func joinedNamespaces(_ session: RestoreSession) throws -> UInt64
}

extension RestoreExtension {
    public func rollBack(_ session: RestoreSession) {}
    public func prepareRootClone(_ session: RestoreSession) throws {}
    public func joinedNamespaces(_ session: RestoreSession) throws -> UInt64 { 0 }
}

/// Points in a dump or restore where CRIU runs notify scripts (and where runc, over
/// the RPC, runs its hooks). The callback may throw to abort the operation.
public typealias Notify = (_ script: String, _ pid: Int32?) throws -> Void

/// A freezer for the whole tree (the container's cgroup freezer), used while seizing.
public protocol TreeFreezer {
    func freeze() throws
    /// Must not fail: called on every exit path.
    func thaw()
    /// Puts the freezer back as `freeze()` found it around `release`, which lets the seized
    /// tasks go: a cgroup that was frozen before the dump (docker and containerd pause a
    /// container before they checkpoint it) is frozen again before the tasks are released,
    /// so they never run, and is frozen when this returns. Must not fail.
    func restoringOriginalState(_ release: () -> Void)
}

extension TreeFreezer {
    public func restoringOriginalState(_ release: () -> Void) { release() }
}
