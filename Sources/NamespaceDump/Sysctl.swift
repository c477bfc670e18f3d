import Foundation
import LinuxKernel
import ProcFS

/// /proc/sys knobs of the namespaces of the calling thread: ipc, uts and mqueue sysctls are
/// resolved through `current`, so a thread joined by NamespaceJoin reads and writes the
/// joined namespace's values.
enum Sysctl {
    static func path(_ name: String) -> String { "/proc/sys/" + name }

    static func exists(_ name: String) -> Bool { access(path(name), F_OK) == 0 }

    static func read(_ name: String) throws -> String {
        do {
            return try readProcFile(path(name)).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw CheckpointError(.kernel, "read \(path(name)): \(error)", cause: error)
        }
    }

    /// Unsigned values; -1 (an unset *_next_id) reads as nil.
    static func readU64(_ name: String) throws -> UInt64? {
        let text = try read(name)
        if text == "-1" { return nil }
        guard let v = UInt64(text) else {
            throw CheckpointError(.kernel, "\(path(name)): unexpected value \"\(text)\"")
        }
        return v
    }

    static func readU32(_ name: String) throws -> UInt32? {
        guard let v = try readU64(name) else { return nil }
        guard let u = UInt32(exactly: v) else {
            throw CheckpointError(.kernel, "\(path(name)): value \(v) does not fit 32 bits")
        }
        return u
    }

    static func readU32List(_ name: String) throws -> [UInt32] {
        let text = try read(name)
        return try text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map {
            guard let v = UInt32($0) else { throw CheckpointError(.kernel, "\(path(name)): unexpected value \"\(text)\"") }
            return v
        }
    }

    /// Writes `value` unless the knob already holds it (some knobs refuse a write of their
    /// own value, e.g. auto_msgmni, and a skipped write cannot fail).
    static func write(_ name: String, _ value: String) throws {
        let normalized = { (s: String) in s.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ") }
        if let current = try? read(name), normalized(current) == normalized(value) { return }
        let fd = open(path(name), O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open \(path(name)) to write \(value)") }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n != bytes.count { throw CheckpointError.errno("write \(value) to \(path(name))") }
    }
}
