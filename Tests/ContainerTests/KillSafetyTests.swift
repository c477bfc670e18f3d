// `checkpoint --export` killed with SIGKILL at moments spread over its whole run: each kill
// leaves either the container running as before (same processes, not frozen, not stopped)
// or a complete archive at FILE (restored, it counts on) with the container stopped; its
// guard undoes or finishes the run at once, and a later run finds nothing left to clean.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct KillSafetyTests {
    /// A counting container whose stdio is /dev/null, so that its archive restores anywhere.
    final class Subject {
        let scratch: Scratch
        let id: String
        var bundle: Bundle
        var generation = 0

        init(_ scratch: Scratch) throws {
            self.scratch = scratch
            id = scratch.newID()
            bundle = try Bundle.make(at: scratch.sub("bundle-0"), args: countingScript(setup: "sleep 100000 & "))
            let o = Cmd.sh("\(Env.runc) run -d --bundle \(bundle.path) \(id) </dev/null >/dev/null 2>&1", timeout: 30)
            guard o.ok else { throw TestFailure("runc run: \(o)") }
            guard waitFor(10, { bundle.count.count >= 3 }) else { throw TestFailure("the container does not count") }
        }

        /// Its lasting processes (of its freezer cgroup: the init and its `sleep 100000`, not
        /// the counter's short-lived children) and the freezer's state.
        func processes() -> (pids: [Int32], freezer: String)? {
            guard let pid = Runc(id: id).pid, let path = cgroupPath(pid: pid, controller: "freezer") else { return nil }
            let dir = "/sys/fs/cgroup/freezer" + path
            let pids = (readFile(dir + "/cgroup.procs") ?? "").split(separator: "\n").compactMap { Int32($0) }.sorted()
                .filter { $0 == pid || readFile("/proc/\($0)/cmdline") == "sleep\u{0}100000\u{0}" }
            return (pids, (readFile(dir + "/freezer.state") ?? "?").trimmingCharacters(in: .whitespacesAndNewlines))
        }

        /// Restores the archive under the same id (the original is gone) and checks that it counts on.
        func restore(_ archive: String, lastCount: Int) throws {
            generation += 1
            let path = scratch.sub("bundle-\(generation)")
            let rs = Cmd.run([Env.binary, "restore", "--import", archive, "--name", id, "--bundle", path], timeout: 60)
            guard rs.ok else { throw TestFailure("restore of \(archive): \(rs)\n\(tail(path + "/restore.log"))") }
            bundle = Bundle(path: path)
            let b = bundle, dumped = b.lastCount
            guard dumped >= lastCount, waitFor(10, { b.lastCount > dumped }), consecutive(b.count, from: 1) else {
                throw TestFailure("restored from \(archive), the container does not count on from \(lastCount): \(b.count.suffix(8))")
            }
        }
    }

    struct Outcomes: CustomStringConvertible {
        /// Running as before: killed before it paused the container (no journal yet, or the
        /// guard found nothing to undo), or paused and resumed by the guard.
        var untouched = 0, resumed = 0, archived = 0, completed = 0
        var killed: Int { untouched + resumed + archived }
        var description: String {
            "\(killed) kills: \(untouched) before the container was paused, \(resumed) while it was paused (the guard resumed it), \(archived) after the archive was complete (the guard stopped the container); \(completed) runs ended before their kill"
        }
    }

    private func checkpoint(_ archive: String, _ s: Subject, registry: String, log: String, killAt phase: String? = nil) throws -> pid_t {
        try Spawn.start([Env.binary, "checkpoint", "--registry", registry, "--compress", "none", "--export", archive, s.id],
                        stdout: .file(log, append: false), extraEnv: phase.map { ["OCICHECKPOINT_KILL_AT": $0] } ?? [:])
    }

    /// The front end's own kill points (OCICHECKPOINT_KILL_AT), with the outcome each must give.
    static let phases: [(name: String, archive: Bool)] = [
        ("journaled", false), ("paused", false), ("dumped", false), ("described", false), ("packed", false),
        ("linked", true), ("stopped", true),
    ]

    @Test func killedExportLeavesTheContainerRunningOrACompleteArchive() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let registry = scratch.sub("registry")
        let journal = registry + "/checkpoints"
        let s = try Subject(scratch)

        // One run to the end (leaving the container running) measures how long a checkpoint takes here.
        let first = scratch.sub("first.tar")
        let started = Date()
        let full = Cmd.run([Env.binary, "checkpoint", "--registry", registry, "--leave-running", "--compress", "none", "--export", first, s.id], timeout: 60)
        var duration = Date().timeIntervalSince(started)
        try #require(full.ok && Runc(id: s.id).status == "running", "checkpoint: \(full)")

        var outcomes = Outcomes()
        // Each kill point twice, and kills after random delays between them.
        let kills = 50, atPhases = 2 * Self.phases.count, delayed = kills - atPhases
        var plan: [(name: String, archive: Bool)?] = (Self.phases + Self.phases + Array(repeating: nil, count: delayed)).shuffled()
        var n = 0, delays = 0
        while let next = plan.first, n < 2 * kills {
            n += 1
            let before = try #require(s.processes(), "run \(n): the container has no processes")
            let lastCount = s.bundle.lastCount
            let archive = scratch.sub("k\(n).tar"), log = scratch.sub("k\(n).err")
            // Spread over the measured duration.
            let delay = next == nil ? duration * (Double(delays) + Double.random(in: 0..<1)) / Double(delayed) : 0
            let spawned = Date()
            let pid = try checkpoint(archive, s, registry: registry, log: log, killAt: next?.name)
            let early = next == nil ? Spawn.wait(pid, timeout: delay) : nil
            if let early, early.exited {
                // Shorter than measured: the next delays are spread over this run's duration.
                duration = Date().timeIntervalSince(spawned)
            } else if next == nil {
                kill(pid, SIGKILL)
            }
            let status = try #require(early ?? Spawn.wait(pid, timeout: 60), "run \(n): checkpoint does not end")
            // The guard waits for runc and the engine, then undoes or finishes the run.
            let settled = waitFor(20) { ((try? FileManager.default.contentsOfDirectory(atPath: journal)) ?? []).isEmpty }
            #expect(settled, "run \(n): the journal is still there: \(String(describing: try? FileManager.default.contentsOfDirectory(atPath: journal)))")
            let stderr = readFile(log) ?? ""
            let left = ((try? FileManager.default.contentsOfDirectory(atPath: scratch.path)) ?? []).filter { $0.hasPrefix(".") }
            #expect(left.isEmpty, "run \(n) (killed after \(delay) s): left \(left); \(stderr)")

            let archived = FileManager.default.fileExists(atPath: archive)
            if let next {
                #expect(!status.exited && archived == next.archive, "run \(n) killed \(next.name): \(status), archive \(archived); \(stderr)")
            }
            if !status.exited || next != nil { plan.removeFirst() }
            if next == nil && !status.exited { delays += 1 }
            if archived {
                if status.exited {
                    outcomes.completed += 1
                } else {
                    outcomes.archived += 1
                }
                #expect(Runc(id: s.id).status == nil, "run \(n): an archive, and the container is still \(Runc(id: s.id).status ?? "")")
                try s.restore(archive, lastCount: lastCount)
                try? FileManager.default.removeItem(atPath: archive)
            } else {
                if stderr.contains("was interrupted") && stderr.contains("the container was resumed") {
                    outcomes.resumed += 1
                } else {
                    outcomes.untouched += 1
                }
                #expect(!status.exited || status.code != 0, "run \(n): succeeded without an archive: \(stderr)")
                let after = s.processes()
                #expect(Runc(id: s.id).status == "running", "run \(n) (killed after \(delay) s): container \(Runc(id: s.id).status ?? "gone"); \(stderr)")
                #expect(after?.pids == before.pids && after?.freezer == "THAWED", "run \(n): \(before) became \(String(describing: after)); \(stderr)")
                for p in after?.pids ?? [] {
                    let state = procStatus(p)["State"] ?? "gone"
                    #expect(state.hasPrefix("S") || state.hasPrefix("R"), "run \(n): pid \(p) is \(state)")
                }
                let b = s.bundle, now = b.lastCount
                #expect(now >= lastCount && waitFor(5) { b.lastCount > now }, "run \(n): the container stopped counting at \(now)")
            }
        }
        print("KillSafetyTests: kills spread over \(String(format: "%.2f", duration)) s: \(outcomes)")
        #expect(outcomes.killed == kills && outcomes.untouched > 0 && outcomes.resumed > 0 && outcomes.archived > 0, "\(outcomes)")

        // A later run finds nothing left to clean.
        let last = scratch.sub("last.tar")
        let again = Cmd.run([Env.binary, "checkpoint", "--registry", registry, "--leave-running", "--compress", "none", "--export", last, s.id], timeout: 60)
        #expect(again.ok && !again.err.contains("interrupted"), "\(again)")
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: scratch.path)) ?? []).filter { $0.hasPrefix(".") }
        #expect(left.isEmpty, "\(left)")
    }

    /// The run and its guard both killed while the container is paused: the next checkpoint
    /// (of any container) says so in one line, resumes the container and removes the staging.
    @Test func aLaterRunUndoesARunKilledWithItsGuard() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let registry = scratch.sub("registry")
        let s = try Subject(scratch)
        let before = try #require(s.processes())
        let archive = scratch.sub("k.tar"), log = scratch.sub("k.err")
        let pid = try checkpoint(archive, s, registry: registry, log: log)
        defer { kill(pid, SIGKILL); _ = Spawn.wait(pid, timeout: 10) }
        try #require(waitFor(20) { s.processes()?.freezer == "FROZEN" }, "the run never paused the container")
        let guardian = try #require(guardPid(registry), "no guard")
        kill(guardian, SIGKILL)
        kill(pid, SIGKILL)
        _ = Spawn.wait(pid, timeout: 30)
        // runc and the engine go on and leave the container paused, as they found it.
        #expect(waitFor(20) { Cmd.run(["/usr/bin/pgrep", "-f", "runc.*checkpoint.*\(s.id)"]).out.isEmpty })
        #expect(s.processes()?.freezer == "FROZEN" && Runc(id: s.id).status == "paused")
        let staged = ((try? FileManager.default.contentsOfDirectory(atPath: scratch.path)) ?? []).filter { $0.hasPrefix(".ocicheckpoint-") }
        #expect(staged.count == 1, "\(staged)")

        let later = Cmd.run([Env.binary, "checkpoint", "--registry", registry, "--export", scratch.sub("other.tar"), "no-such-container-k1"])
        let lines = later.err.split(separator: "\n")
        #expect(lines.count == 2 && lines[0].hasPrefix("ocicheckpoint: a checkpoint of \(s.id) (pid \(pid)) was interrupted: no archive was written; the container was resumed; removed ")
                && lines[1].contains("not found"), "\(later)")
        let after = s.processes()
        #expect(Runc(id: s.id).status == "running" && after?.pids == before.pids && after?.freezer == "THAWED", "\(String(describing: after))")
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: scratch.path)) ?? []).filter { $0.hasPrefix(".") }
        #expect(left.isEmpty && !FileManager.default.fileExists(atPath: archive), "\(left)")
        let counted = s.bundle.lastCount
        #expect(waitFor(5) { s.bundle.lastCount >= counted + 2 })
    }

    /// A ^C (SIGINT to the front end's process group) during the dump reaches the front end
    /// only: the engine, in runc's own group, abandons the dump, and the guard resumes the
    /// container with the same processes.
    @Test func interruptFromTheTerminalDuringTheDump() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let registry = scratch.sub("registry")
        let s = try Subject(scratch)
        let before = try #require(s.processes())
        let archive = scratch.sub("k.tar"), log = scratch.sub("k.err")
        // setsid: the front end leads a process group of its own, as a shell's job would.
        let pid = try Spawn.start(["/usr/bin/setsid", Env.binary, "checkpoint", "--registry", registry, "--export", archive, s.id],
                                  stdout: .file(log, append: false))
        defer { kill(pid, SIGKILL); _ = Spawn.wait(pid, timeout: 10) }
        var engine: pid_t?
        try #require(waitFor(20) { engine = engineOf(pid); return engine != nil }, "no engine under runc under \(pid)")
        let group = readFile("/proc/\(engine!)/stat")?.split(separator: ")").last?.split(separator: " ").dropFirst(2).first
        #expect(group != nil && group != "\(pid)"[...], "the engine \(engine!) is in the front end's process group")
        kill(-pid, SIGINT)
        let status = try #require(Spawn.wait(pid, timeout: 30))
        #expect(!status.exited && status.signal == SIGINT, "\(status)")
        #expect(waitFor(20) { ((try? FileManager.default.contentsOfDirectory(atPath: registry + "/checkpoints")) ?? []).isEmpty })
        let stderr = readFile(log) ?? ""
        #expect(stderr.contains("was interrupted: no archive was written; the container was resumed"), "\(stderr)")
        let after = s.processes()
        #expect(Runc(id: s.id).status == "running" && after?.pids == before.pids && after?.freezer == "THAWED", "\(String(describing: after))")
        let counted = s.bundle.lastCount
        #expect(waitFor(5) { s.bundle.lastCount > counted })
        #expect(!FileManager.default.fileExists(atPath: archive))
    }

    /// runc's engine told of a client (OCICHECKPOINT_CLIENT) that has died abandons the dump,
    /// even in runc's kill mode, and the container runs on untouched.
    @Test func theEngineAbandonsADumpWhoseClientDied() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let s = try Subject(scratch)
        let before = try #require(s.processes())
        let client = try Spawn.start(["/bin/sleep", "100"], stdout: .file("/dev/null", append: false))
        let start = try #require(readFile("/proc/\(client)/stat")?.split(separator: ")").last?.split(separator: " ").dropFirst(19).first)
        kill(client, SIGKILL)
        _ = Spawn.wait(client, timeout: 10)
        let images = scratch.sub("images")
        let o = Cmd.run([Env.runc, "--criu", Env.binary, "checkpoint", "--image-path", images, "--work-path", images, s.id],
                        timeout: 60, extraEnv: ["OCICHECKPOINT_CLIENT": "\(client):\(start)"])
        #expect(!o.ok)
        #expect((readFile(images + "/dump.log") ?? "").contains("the checkpoint's client (pid \(client)) has died: dump abandoned"), "\(o)")
        let after = s.processes()
        #expect(Runc(id: s.id).status == "running" && after?.pids == before.pids && after?.freezer == "THAWED", "\(String(describing: after))")
        #expect(!FileManager.default.fileExists(atPath: images + "/inventory.img"))
    }

    /// The engine (`ocicheckpoint swrk`) that runc, started by `client`, runs.
    private func engineOf(_ client: pid_t) -> pid_t? {
        func parent(_ pid: Substring) -> Substring? {
            readFile("/proc/\(pid)/stat")?.split(separator: ")").last?.split(separator: " ").dropFirst(1).first
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let cmdline = readFile("/proc/\(name)/cmdline"), cmdline.contains("\u{0}swrk\u{0}"),
                  let runc = parent(name[...]), parent(runc) == "\(client)"[...] else { continue }
            return pid
        }
        return nil
    }

    /// The guard of the run that journals into `registry`.
    private func guardPid(_ registry: String) -> pid_t? {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(name)/cmdline")) else { continue }
            let args = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if args.count >= 3, args[1] == "checkpoint-guard", args[2].hasPrefix(registry + "/") { return pid }
        }
        return nil
    }
}
