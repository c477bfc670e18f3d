import Foundation
import SystemTestSupport
import LinuxKernel
#if canImport(Glibc)
import Glibc
#endif

/// Cgroups a test makes: every directory is named <name>... at the top of a hierarchy, and
/// `cleanUp` (also run on deinit) thaws, empties and removes every such directory in every
/// hierarchy, including those a restore made, so a failing test leaves nothing behind.
final class TestCgroups {
    static let root = "/sys/fs/cgroup"
    let name: String

    init() {
        name = "ocicheckpoint-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// /sys/fs/cgroup/<hierarchy>/<name><suffix>/<sub>
    func path(_ hierarchy: String, _ sub: String = "", suffix: String = "") -> String {
        let base = "\(Self.root)/\(hierarchy)/\(name)\(suffix)"
        return sub.isEmpty ? base : base + "/" + sub
    }

    /// The cgroup path (relative to the hierarchy root) of `path(...)`.
    func cgroupPath(_ sub: String = "", suffix: String = "") -> String {
        sub.isEmpty ? "/\(name)\(suffix)" : "/\(name)\(suffix)/\(sub)"
    }

    @discardableResult
    func make(_ hierarchy: String, _ sub: String = "", suffix: String = "") throws -> String {
        let p = path(hierarchy, sub, suffix: suffix)
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    func write(_ file: String, _ value: String) throws {
        let fd = open(file, O_WRONLY)
        if fd < 0 { throw CheckpointError.errno("open \(file)") }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        if Glibc.write(fd, bytes, bytes.count) != bytes.count { throw CheckpointError.errno("write \(value) to \(file)") }
    }

    func read(_ file: String) throws -> String {
        try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .newlines)
    }

    func cleanUp() {
        let hierarchies = (try? FileManager.default.contentsOfDirectory(atPath: Self.root)) ?? []
        for h in hierarchies {
            let top = "\(Self.root)/\(h)"
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: top)) ?? [] where entry.hasPrefix(name) {
                remove(top + "/" + entry)
            }
        }
    }

    private func remove(_ dir: String) {
        for child in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            var st = stat()
            if lstat(dir + "/" + child, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { remove(dir + "/" + child) }
        }
        if FileManager.default.fileExists(atPath: dir + "/freezer.state") { try? write(dir + "/freezer.state", "THAWED") }
        if FileManager.default.fileExists(atPath: dir + "/cgroup.freeze") { try? write(dir + "/cgroup.freeze", "0") }
        for _ in 0..<200 {
            let procs = ((try? read(dir + "/cgroup.procs")) ?? "").split(separator: "\n").compactMap { Int32($0) }
            for p in procs { kill(p, SIGKILL); var st: Int32 = 0; waitpid(p, &st, WNOHANG) }
            if rmdir(dir) == 0 || errno == ENOENT { return }
            usleep(10_000)
        }
    }

    deinit { cleanUp() }
}

/// A task's cpu time in clock ticks (utime + stime), to see whether it makes progress.
func cpuTicks(_ pid: Int32) throws -> Int {
    let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
    guard let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // fields[0] is the state (field 3); utime and stime are fields 14 and 15
    return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
}

/// The path of `pid` in the hierarchy whose /proc/PID/cgroup controllers field is `controllers`.
func cgroupOf(_ pid: Int32, _ controllers: String) throws -> String? {
    let text = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)
    for line in text.split(separator: "\n") {
        let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        if f.count == 3 && f[1] == controllers { return String(f[2]) }
    }
    return nil
}
