import Foundation
import LinuxKernel
import CShim

extension FileTableDump {
    /// The console and virtual terminals are reopened by path, which gives back the same
    /// terminal only while it lives on: at its last close the kernel frees it and a virtual
    /// terminal's termios go back to the driver's defaults. So some process outside the tree
    /// must hold it too (a getty, the session's shell), or the restore could differ.
    static func checkTerminalOutlivesTree(_ st: stat, link: String, treeTids: [Int32: Int32], at where_: String) throws {
        let rdev = UInt64(st.st_rdev)
        let (major, minor) = (rdev >> 8 & 0xfff, rdev & 0xff | rdev >> 12 & 0xfff00)
        guard st.st_mode & S_IFMT == S_IFCHR, (major == 4 && minor < 64) || (major == 5 && minor == 1) else { return }
        let me = getpid()
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
        for pid in pids where pid != me && treeTids[pid] == nil {
            for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? [] {
                var other = stat()
                if stat("/proc/\(pid)/fd/\(fd)", &other) == 0, other.st_mode & S_IFMT == S_IFCHR, other.st_rdev == st.st_rdev { return }
            }
        }
        throw CheckpointError(.unsupported, "\(where_): terminal \(link) is held by no process outside the dumped tree; its last close resets it, so reopening it at restore would not give back its state")
    }
}
