import Foundation
import Engine
import LinuxKernel
import Images
import ProcFS

/// How a restore treats the cgroups of the image (CRIU's --manage-cgroups modes).
public enum CgroupManageMode: String, Sendable {
    /// Touch no cgroup; tasks stay where the restorer creates them.
    case ignore
    /// Directories must exist; their settings are restored.
    case props
    /// Missing directories are created with their settings; existing ones keep theirs.
    case soft
    /// Missing directories are created; settings are restored everywhere.
    case full
    /// Every directory must be new: an existing one is an error.
    case strict
}

/// cgroup.img: the cgroup sets the tree's tasks live in, and per hierarchy the tree's
/// cgroup directories with their settings, as CRIU writes them (criu/cgroup.c). Restore
/// recreates the directories under the caller's cgroup roots and moves the root task in.
public struct CgroupsDump: DumpExtension, RestoreExtension {
    public var mode: CgroupManageMode
    /// When set, setUp writes only what must precede the tasks (directories, cpuset and
    /// devices lists) and `applySettings` the rest: limits such as pids.max or
    /// memory.limit_in_bytes then do not bind while the restore itself forks and fills memory.
    public var deferSettings: Bool
    let state = State()

    public init(mode: CgroupManageMode = .full, deferSettings: Bool = false) {
        self.mode = mode
        self.deferSettings = deferSettings
    }

    // MARK: dump

    public func dump(_ session: DumpSession) throws {
        let tree = session.tree, log = session.log
        let live = tree.processes.filter { !$0.isZombie }
        try dump(pids: live.map(\.pid), rootPid: tree.root.pid, images: session.images, log: log)
        // Sets are per process here; CRIU 3.16+ also records threads in other cgroups.
        for p in live {
            let own = try? CgroupMembership.read(pid: p.pid)
            for tid in p.threads where tid != p.pid {
                if let t = try? CgroupMembership.read(pid: tid), t != own {
                    log.warn("cgroups: thread \(tid) of pid \(p.pid) is in other cgroups than its process; restored in its process's")
                }
            }
        }
    }

    /// Records the cgroups of `pids` (the root first or not: `rootPid` gets set 1) and
    /// writes cgroup.img. `setID(forPid:)` answers afterwards.
    @discardableResult
    public func dump(pids: [Int32], rootPid: Int32, images: ImageDirectory, log: Log) throws -> CgroupImage {
        let image = try Self.collect(pids: pids, rootPid: rootPid, log: log)
        try images.write(.cgroup, [image.entry])
        state.record(image)
        log.info("cgroups: \(image.entry.sets.count) sets, \(image.entry.controllers.count) hierarchies, \(image.entry.controllers.reduce(0) { $0 + Self.count($1.dirs) }) directories")
        return image
    }

    /// The cg_set id of a task of the last dump (core_entry.tc.cg_set), nil for a pid it
    /// did not record.
    public func setID(forPid pid: Int32) -> UInt32? { state.setID(pid) }

    /// The root task's set (inventory_entry.root_cg_set).
    public var rootSetID: UInt32? { state.rootSetID }

    static func count(_ dirs: [CgroupDirEntry]) -> Int { dirs.reduce(dirs.count) { $0 + count($1.children) } }

    // MARK: restore

    public func namespaceFlags(_ session: RestoreSession) throws -> UInt64 { 0 }

    /// The dumped cgroup namespace, made on the thread that clones the root (see
    /// CgroupsDump+Namespace); nothing when the dump had none.
    public func prepareRootClone(_ session: RestoreSession) throws {
        guard mode != .ignore else { return }
        try prepareCgroupNamespace(images: session.images, cgroupRoots: session.options.cgroupRoots, log: session.log)
    }

    public func setUp(_ session: RestoreSession) throws {
        try setUp(rootPid: session.rootPid, images: session.images, cgroupRoots: session.options.cgroupRoots, log: session.log)
    }

    public func rollBack(_ session: RestoreSession) {
        rollBack(log: session.log)
    }

    /// Removes the directories this restore created, newest first.
    public func rollBack(log: Log) {
        for dir in state.takeCreated().reversed() {
            if rmdir(dir) != 0 { log.warn("cgroups: cannot remove \(dir) made by the failed restore: \(Errno.describe(errno))") }
        }
    }

    /// Directories this restore created, in creation order.
    public var createdDirectories: [String] { state.created }

    final class State: @unchecked Sendable {
        private let lock = NSLock()
        private var setIDs: [Int32: UInt32] = [:]
        private(set) var rootSetID: UInt32?
        private var createdDirs: [String] = []

        func record(_ image: CgroupImage) {
            lock.lock(); defer { lock.unlock() }
            setIDs = image.setIDs
            rootSetID = image.rootSetID
        }

        func setID(_ pid: Int32) -> UInt32? {
            lock.lock(); defer { lock.unlock() }
            return setIDs[pid]
        }

        func created(_ dir: String) {
            lock.lock(); defer { lock.unlock() }
            createdDirs.append(dir)
        }

        var created: [String] {
            lock.lock(); defer { lock.unlock() }
            return createdDirs
        }

        func takeCreated() -> [String] {
            lock.lock(); defer { lock.unlock() }
            defer { createdDirs = [] }
            return createdDirs
        }
    }
}

/// What a dump recorded: the image entry and which set each task is in.
public struct CgroupImage {
    public var entry: CgroupEntry
    public var setIDs: [Int32: UInt32]
    public var rootSetID: UInt32
}
