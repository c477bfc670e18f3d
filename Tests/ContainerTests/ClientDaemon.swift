// What the client tests (Docker, containerd, LXC) share: a PATH whose `criu` is the engine,
// a daemon the test starts and stops by pid, and a scratch directory that is left with no
// process, mount or cgroup of the test behind it.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

enum ClientEnv {
    /// A directory holding `criu` -> the engine binary (argv[0] `criu` selects CRIU's
    /// command names), to put first on a client's PATH.
    static func criuDirectory(in dir: String) throws -> String {
        let bin = dir + "/criu-bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: bin + "/criu", withDestinationPath: Env.binary)
        return bin
    }

    /// PATH for a client: our `criu` first, then the system's directories.
    static func path(criuDirectory: String) -> String {
        criuDirectory + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    }

    static func executable(_ path: String) -> Bool { FileManager.default.isExecutableFile(atPath: path) }

    /// A busybox-static root file system (applets as relative links, root in /etc/passwd).
    static func busyboxRootfs(at dir: String) throws {
        let fm = FileManager.default
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
            try fm.createDirectory(atPath: dir + "/" + d, withIntermediateDirectories: true)
        }
        chmod(dir + "/tmp", 0o1777)
        try fm.copyItem(atPath: Env.busybox, toPath: dir + "/bin/busybox")
        for applet in Cmd.run([Env.busybox, "--list"]).out.split(separator: "\n") where applet != "busybox" {
            try? fm.createSymbolicLink(atPath: dir + "/bin/" + applet, withDestinationPath: "busybox")
        }
        try "root:x:0:0:root:/root:/bin/sh\n".write(toFile: dir + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\n".write(toFile: dir + "/etc/group", atomically: true, encoding: .utf8)
    }

    /// The integers of a count file's text, one per line.
    static func counts(_ text: String) -> [Int] { text.split(separator: "\n").compactMap { Int($0) } }
}

/// A daemon the test started (dockerd, containerd): stopped by its pid with SIGTERM, then
/// SIGKILL; processes it left behind (shims) found by `leftoverMarker` in their command
/// line and killed by pid; mounts under `scratch` undone, deepest first.
final class ClientDaemon {
    let pid: pid_t
    let name: String
    let log: String
    private var stopped = false

    init(_ argv: [String], name: String, log: String, path: String) throws {
        self.name = name
        self.log = log
        pid = try Spawn.start(argv, stdout: .file(log, append: false), extraEnv: ["PATH": path])
    }

    /// Waits until `ready` holds; throws with the log's tail when the daemon exits or takes too long.
    func waitReady(_ timeout: Double, _ ready: () -> Bool) throws {
        let ok = waitFor(timeout) {
            if kill(pid, 0) != 0 { return true }
            return ready()
        }
        if !ok || kill(pid, 0) != 0 || !ready() {
            throw TestFailure("\(name) did not come up (pid \(pid)):\n\(tail(log, 20))")
        }
    }

    func stop() {
        guard !stopped else { return }
        stopped = true
        kill(pid, SIGTERM)
        if Spawn.wait(pid, timeout: 20) == nil {
            kill(pid, SIGKILL)
            _ = Spawn.wait(pid, timeout: 10)
        }
    }

    deinit { stop() }

    /// Pids whose command line contains `marker` (not ours).
    static func processes(mentioning marker: String) -> [pid_t] {
        let me = getpid()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { pid in
            guard pid != me, let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let cmdline = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return cmdline.contains(marker)
        }
    }

    /// Kills (SIGKILL, by pid) every process whose command line names `marker`, then
    /// unmounts everything mounted under `dir` (deepest first) and removes it.
    static func cleanUp(_ dir: String, marker: String) {
        for pid in processes(mentioning: marker) { kill(pid, SIGKILL) }
        waitFor(5) { processes(mentioning: marker).isEmpty }
        let mounts = (readFile("/proc/self/mountinfo") ?? "").split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { return nil }
            let point = String(fields[4])
            return point == dir || point.hasPrefix(dir + "/") ? point : nil
        }
        for point in mounts.sorted(by: { $0.count > $1.count }) {
            Cmd.run(["/bin/umount", "-l", point], timeout: 10)
        }
        Cmd.run(["/bin/rm", "-rf", dir], timeout: 60)
    }

    /// Removes the (empty) cgroup directories named `name` under each v1 hierarchy, deepest first.
    static func removeCgroups(_ name: String) {
        let hierarchies = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []
        for h in hierarchies {
            let top = "/sys/fs/cgroup/\(h)/\(name)"
            guard FileManager.default.fileExists(atPath: top) else { continue }
            let found = Cmd.run(["/usr/bin/find", top, "-depth", "-type", "d"], timeout: 10).out
            for d in found.split(separator: "\n") { rmdir(String(d)) }
        }
    }
}

/// A scratch directory for a client test, "/tmp/oct-client-XXXXXX".
func clientScratch(_ kind: String) throws -> String {
    var template = Array("/tmp/oct-\(kind)-XXXXXX".utf8CString)
    guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
        throw TestFailure("mkdtemp: \(String(cString: strerror(errno)))")
    }
    return String(cString: template)
}
