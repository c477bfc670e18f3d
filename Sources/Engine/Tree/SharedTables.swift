import Foundation
import LinuxKernel
import Images

/// fd tables and fs (cwd, root, umask) that processes share, as clone with CLONE_FILES or
/// CLONE_FS leaves them. As in CRIU, a child that shares its parent's table has the
/// parent's files_id / fs_id in ids-PID.img, and is cloned with the same flag at restore;
/// the table is dumped once. Sharing between processes that are not parent and child
/// cannot be cloned again and is refused.
struct SharedTables {
    /// Host pid -> the vpid naming its fd table / fs (its own, or the one it shares).
    private(set) var files: [Int32: Int32] = [:]
    private(set) var fs: [Int32: Int32] = [:]

    init(_ tree: FrozenTree) throws {
        let live = tree.processes.filter { !$0.isZombie }
        let inTree = Set(live.map(\.pid))
        for (type, what) in [(KcmpType.files, "fd table (clone with CLONE_FILES)"), (KcmpType.fs, "cwd, root and umask (clone with CLONE_FS)")] {
            var table: [Int32: Int32] = [:]
            // One holder per table, valued by the vpid that names it.
            var tables = KcmpIndex<Int32>(type: type)
            for p in live {
                let (owner, isNew) = try tables.value(of: .init(pid: p.pid)) { p.vpid }
                if !isNew && !(inTree.contains(p.stat.ppid) && table[p.stat.ppid] == owner) {
                    throw CheckpointError(.unsupported, "pid \(p.vpid) shares its \(what) with pid \(owner), which is not its parent: this cannot be restored")
                }
                table[p.pid] = owner
            }
            if type == KcmpType.files { files = table } else { fs = table }
        }
    }

    /// ids-PID.img naming the shared tables.
    func apply(to ids: inout TaskKobjIdsEntry, pid: Int32) {
        if let f = files[pid] { ids.filesID = UInt32(f) }
        if let f = fs[pid] { ids.fsID = UInt32(f) }
    }

    /// Whether `pid` has a table of its own, whose fds are dumped with it.
    func ownsFiles(_ pid: Int32, vpid: Int32) -> Bool { (files[pid] ?? vpid) == vpid }
}
