import Foundation
import LinuxKernel

/// An fd table or fs (cwd, root, umask) that two processes share, as clone with
/// CLONE_FILES or CLONE_FS leaves them. The restore gives every process tables of its own,
/// so a tree that shares them would come back with two tables where it had one (a file
/// opened by one no longer seen by the other): such a dump is refused.
enum SharedTables {
    static func refuse(_ tree: FrozenTree) throws {
        let live = tree.processes.filter { !$0.isZombie }
        for (i, p) in live.enumerated() {
            for q in live[..<i] {
                for (type, what) in [(KcmpType.files, "fd table (clone with CLONE_FILES)"), (KcmpType.fs, "cwd, root and umask (clone with CLONE_FS)")] {
                    if case .success(0) = Syscall.result(SyscallNumber.kcmp, Int(p.pid), Int(q.pid), type) {
                        throw CheckpointError(.unsupported, "pid \(p.vpid) shares its \(what) with pid \(q.vpid): shared tables cannot be restored yet")
                    }
                }
            }
        }
    }
}
