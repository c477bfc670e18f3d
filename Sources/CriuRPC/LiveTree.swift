import Foundation
import ProcFS

/// A running process tree as /proc shows it, for the check the service makes before the
/// engine runs: whether the tree holds a terminal.
struct LiveTree {
    /// Root first, then every descendant.
    let pids: [Int32]

    init(root: Int32) { pids = (try? ProcTree.subtree(of: root)) ?? [] }

    /// The first descriptor of the tree open on a terminal (a pty, the console or a vt).
    func terminal() -> (pid: Int32, fd: String, target: String)? {
        for pid in pids {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            for fd in fds.sorted(by: { (Int($0) ?? 0) < (Int($1) ?? 0) }) {
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)") else { continue }
                if Self.isTerminal(target) { return (pid, fd, target) }
            }
        }
        return nil
    }

    static func isTerminal(_ path: String) -> Bool {
        if path.hasPrefix("/dev/pts/") || path == "/dev/ptmx" || path == "/dev/console" { return true }
        // /dev/tty alone is the "controlling terminal" alias the engine handles; /dev/ttyN are vts.
        return path.hasPrefix("/dev/tty") && path.count > 8 && path.dropFirst(8).allSatisfy(\.isNumber)
    }
}
