import Foundation
import Engine

/// A running process tree as /proc shows it, for the checks the service makes around the
/// engine: whether the tree holds a terminal, and killing a tree it just restored.
struct LiveTree {
    /// Root first, then every descendant (from /proc/PID/task/TID/children).
    let pids: [Int32]

    init(root: Int32) {
        var out: [Int32] = []
        var queue = [root]
        while let pid = queue.first {
            queue.removeFirst()
            guard !out.contains(pid), access("/proc/\(pid)", F_OK) == 0 else { continue }
            out.append(pid)
            let tids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            for tid in tids {
                let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/children", encoding: .utf8)) ?? ""
                queue += text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
        }
        pids = out
    }

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

    /// SIGKILL to every task, children first; reaps the ones that are our children.
    func kill() {
        for pid in pids.reversed() { Glibc.kill(pid, SIGKILL) }
        for pid in pids {
            var st: Int32 = 0
            while waitpid(pid, &st, __WALL) < 0 && errno == EINTR {}
        }
    }
}
