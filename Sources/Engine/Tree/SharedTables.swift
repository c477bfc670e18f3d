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
        let vpid = Dictionary(uniqueKeysWithValues: live.map { ($0.pid, $0.vpid) })
        for (i, p) in live.enumerated() {
            for (type, what) in [(KcmpType.files, "fd table (clone with CLONE_FILES)"), (KcmpType.fs, "cwd, root and umask (clone with CLONE_FS)")] {
                let parent = p.stat.ppid
                var table = type == KcmpType.files ? files : fs
                if i > 0, vpid[parent] != nil, Self.same(p.pid, parent, type) {
                    table[p.pid] = table[parent]
                } else {
                    table[p.pid] = p.vpid
                }
                for q in live[..<i] where table[q.pid] != table[p.pid] && Self.same(p.pid, q.pid, type) {
                    throw CheckpointError(.unsupported, "pid \(p.vpid) shares its \(what) with pid \(q.vpid), which is not its parent: this cannot be restored")
                }
                if type == KcmpType.files { files = table } else { fs = table }
            }
        }
    }

    static func same(_ a: Int32, _ b: Int32, _ type: Int) -> Bool {
        if case .success(0) = Syscall.result(SyscallNumber.kcmp, Int(a), Int(b), type) { return true }
        return false
    }

    /// ids-PID.img naming the shared tables.
    func apply(to ids: inout TaskKobjIdsEntry, pid: Int32) {
        if let f = files[pid] { ids.filesID = UInt32(f) }
        if let f = fs[pid] { ids.fsID = UInt32(f) }
    }

    /// Whether `pid` has a table of its own, whose fds are dumped with it.
    func ownsFiles(_ pid: Int32, vpid: Int32) -> Bool { (files[pid] ?? vpid) == vpid }
}
