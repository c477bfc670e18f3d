import Foundation
import LinuxKernel
import Images
import ProcFS

/// Resource limits and locked memory, read from /proc rather than asked of the kernel:
/// prlimit on another process needs CAP_SYS_RESOURCE unless it runs as our uid, so CRIU
/// ("Can't get rlimit") cannot dump a task that changed its uid without it.
enum ResourceLimits {
    /// The 16 limits in RLIMIT_* order as /proc/PID/limits prints them: a 26-column name,
    /// then soft and hard ("unlimited" or a number) and the unit.
    static func read(_ pid: Int32) throws -> TaskRlimitsEntry {
        let path = "/proc/\(pid)/limits"
        let lines = try readProcFile(path).split(separator: "\n").dropFirst()
        var out = TaskRlimitsEntry()
        for line in lines.prefix(16) {
            let fields = line.dropFirst(26).split(separator: " ", omittingEmptySubsequences: true)
            func value(_ s: Substring?) throws -> UInt64 {
                guard let s else { throw CheckpointError(.kernel, "\(path): no value in '\(line)'") }
                if s == "unlimited" { return UInt64.max }
                guard let v = UInt64(s) else { throw CheckpointError(.kernel, "\(path): '\(s)' is not a limit in '\(line)'") }
                return v
            }
            var e = RlimitEntry()
            e.cur = try value(fields.first)
            e.max = try value(fields.dropFirst().first)
            out.rlimits.append(e)
        }
        guard out.rlimits.count == 16 else { throw CheckpointError(.kernel, "\(path): \(out.rlimits.count) limits, want 16") }
        return out
    }
}
