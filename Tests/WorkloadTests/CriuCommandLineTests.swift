// CRIU's command line as its clients use it (LXC runs `criu` with options before the
// command, a config file, -W, --leave-stopped...): a real process dumped and restored
// through it, and the one-line refusals that leave the process as it was.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("CRIU's command line", .serialized)
struct CriuCommandLineTests {
    static func oc(_ args: [String]) -> Output { Cmd.run([Paths.binary] + args, timeout: 60) }

    /// A sleeping session leader of its own (the engine refuses a tree whose session is outside).
    static func sleeper() throws -> Sleeper {
        try Sleeper(["/usr/bin/setsid", "/bin/sh", "-c", "echo ready; exec sleep 1000"])
    }

    static func state(_ pid: Int32) -> String { String(procStatus(pid)["State"]?.prefix(1) ?? "-") }

    @Test("-V and --version answer CRIU's way with one release everywhere")
    func version() {
        for args in [["-V"], ["--version"], ["-v4", "--version"]] {
            let o = Self.oc(args)
            #expect(o.ok && o.out == "Version: 3.17.1\n", "\(args): \(o)")
        }
    }

    @Test("options before the command, --config, -W and --leave-stopped; then a restore the same way")
    func dumpAndRestoreInCriuForm() throws {
        let scratch = try Scratch()
        let s = try Self.sleeper()
        defer { s.stop() }
        let child = try #require(sleepingTask(s.pid))
        let conf = scratch.sub("criu.conf")
        try "# as LXC writes them\nfile-locks\ntcp-established\nlink-remap\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let images = scratch.sub("img"), work = scratch.sub("work")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let dump = Self.oc(["-v4", "-o", "dump.log", "--config", conf, "dump", "-t", "\(child)", "-D", images, "-W", work,
                            "--leave-stopped", "--manage-cgroups", "--enable-external-sharing", "--enable-external-masters",
                            "--enable-fs", "hugetlbfs", "--force-irmap", "--skip-in-flight"])
        try #require(dump.ok, "dump: \(dump)\n\(readFile(work + "/dump.log") ?? "no log in the work dir")")
        #expect(FileManager.default.fileExists(atPath: images + "/inventory.img"))
        #expect(FileManager.default.fileExists(atPath: work + "/stats-dump"), "stats go to -W")
        let log = readFile(work + "/dump.log") ?? ""
        #expect(log.contains("accepted, not acted on: ") && log.contains(" irmap"), "the log names what was accepted without effect")
        #expect(Self.state(child) == "T", "--leave-stopped: state \(Self.state(child))")
        #expect(procStatus(child)["TracerPid"] == "0")

        kill(child, SIGKILL)
        #expect(waitFor(10) { access("/proc/\(child)", F_OK) != 0 || Self.state(child) == "Z" })
        s.stop()
        try #require(waitFor(10) { access("/proc/\(child)", F_OK) != 0 }, "pid \(child) is still taken")

        let work2 = scratch.sub("work2"), pidfile = scratch.sub("pid")
        try FileManager.default.createDirectory(atPath: work2, withIntermediateDirectories: true)
        let restore = Self.oc(["-v4", "-o", "restore.log", "restore", "-D", images, "-W", work2, "--restore-detached",
                               "--pidfile", pidfile, "--manage-cgroups=soft", "--lsm-profile", "apparmor:unconfined"])
        try #require(restore.ok, "restore: \(restore)\n\(readFile(work2 + "/restore.log") ?? "no log in the work dir")")
        defer { kill(child, SIGKILL) }
        #expect(readFile(pidfile)?.trimmingCharacters(in: .whitespacesAndNewlines) == "\(child)")
        // It was sleeping when dumped (--leave-stopped stops it only after the dump).
        #expect(Self.state(child) == "S", "restored state \(Self.state(child))")
        #expect(readFile("/proc/\(child)/cmdline")?.hasPrefix("sleep") == true)
    }

    @Test("check --feature answers per feature, with the reason when it is not supported")
    func checkFeature() {
        let yes = Self.oc(["check", "--feature", "timens"])
        #expect(yes.ok && yes.out == "timens is supported\n", "\(yes)")
        let no = Self.oc(["check", "--feature", "tun"])
        #expect(!no.ok && no.err.contains("tun is not supported: tun devices"), "\(no)")
        let unknown = Self.oc(["check", "--feature", "warp_drive"])
        #expect(!unknown.ok && unknown.err.contains("unknown feature warp_drive"), "\(unknown)")
        let all = Self.oc(["check", "--all"])
        #expect(all.ok && all.out.contains("Looks good"), "\(all)")
    }

    @Test("bad and unsupported options are one line each, and the process is left as it was")
    func refusals() throws {
        let s = try Self.sleeper()
        defer { s.stop() }
        let child = try #require(sleepingTask(s.pid))
        let scratch = try Scratch()
        let cases: [([String], String)] = [
            (["dump", "--frobnicate", "-t", "\(child)"], "Unknown option '--frobnicate'"),
            (["dump", "-t", "-5", "-D", scratch.path], "-t -5: a process id is a positive number"),
            (["dump", "-D", scratch.path], "dump needs -t PID"),
            (["dump", "-t", "\(child)", "-D", scratch.path, "--external", "dev[1/2]:x"], "only mnt[KEY]:VAL is supported yet"),
            (["dump", "-t", "\(child)", "-D", scratch.path, "--lazy-pages"], "dump --lazy-pages: needs --port"),
            (["dump", "-t", "\(child)", "-D", scratch.path, "--manage-cgroups=sideways"], "unknown cgroups mode"),
            (["dump", "-t", "\(child)", "-D", scratch.path, "--lsm-profile", "selinux:x"], "LSM profiles are not supported yet"),
            (["--config", scratch.sub("missing.conf"), "dump", "-t", "\(child)"], "config file \(scratch.sub("missing.conf")): cannot be read"),
            (["dump", "-t", "1", "-D", scratch.path], "pid 1 is the init of the dumper's pid namespace"),
            (["dump", "-t", "\(getpid())", "-D", scratch.path], "pid \(getpid()) is an ancestor of the dumper"),
        ]
        for (args, expected) in cases {
            let o = Self.oc(args)
            #expect(!o.ok && o.err.contains(expected), "\(args): \(o)")
            #expect(o.err.split(separator: "\n").first.map { $0.contains(expected) } == true, "the first line names it: \(o.err)")
        }
        #expect(Self.state(child) == "S", "the process was touched: \(Self.state(child))")
        #expect(procStatus(child)["TracerPid"] == "0")
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/inventory.img"))
    }

    /// The sleep itself: `pid` when setsid did not need to fork, else its child.
    func sleepingTask(_ pid: Int32) -> Int32? {
        if waitFor(5, { readFile("/proc/\(pid)/cmdline")?.hasPrefix("sleep") == true }) { return pid }
        var child: Int32?
        _ = waitFor(5) {
            let kids = (readFile("/proc/\(pid)/task/\(pid)/children") ?? "").split(separator: " ").compactMap { Int32($0) }
            child = kids.first
            return child != nil && readFile("/proc/\(child!)/cmdline")?.hasPrefix("sleep") == true
        }
        return child
    }
}
