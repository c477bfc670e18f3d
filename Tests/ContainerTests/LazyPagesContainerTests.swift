// runc's lazy migration (issue 14, item 3) with our binary as its CRIU: `runc checkpoint
// --lazy-pages --page-server A:P --status-fd` keeps serving the container's memory after
// the status byte; `lazy-pages --page-server` (started by the caller, as runc expects)
// takes it for `runc restore --lazy-pages`, and the container counts on from where it stood.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct LazyPagesContainerTests {
    /// The shell alone (the wait is a builtin read on a fifo, no sleep child), or a tree:
    /// init waits for a subshell it forked, which fills a variable (memory of its own) and
    /// counts, reading the variable each time. `sourceKilled`: the checkpoint's CRIU is
    /// killed once the container is restored, before it served the variable's pages.
    @Test(arguments: [(tree: false, sourceKilled: false), (true, false), (true, true)])
    func checkpointLazyPagesThenRestoreLazily(tree: Bool, sourceKilled: Bool) throws {
        try #require(FileManager.default.isExecutableFile(atPath: Env.binary), "no engine binary at \(Env.binary)")
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = scratch.newID(), restoredID = scratch.newID()
        let loop = "i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; : ${#big}; read -t 0.2 x <> /tmp/f; done"
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: ["sh", "-c", "mkfifo /tmp/f; " + (tree ? "(big=$(seq 1 30000); \(loop)) & wait" : loop)])
        try bundle.run(id: id)
        scratch.onTearDown { _ = Cmd.run([Env.runc, "delete", "-f", id]) }
        try #require(waitFor(10) { bundle.count.count >= 3 }, "the container does not count: \(tail(bundle.path + "/run.err"))")

        let images = try scratch.directory("images"), work = try scratch.directory("work"), restoreWork = try scratch.directory("work-restore")
        let port = PageServerContainerTests().freePort()
        let status = scratch.sub("status"), rc = scratch.sub("checkpoint.rc"), out = scratch.sub("checkpoint.out")
        let checkpoint = "\(Env.runc) --criu \(Env.binary) checkpoint --lazy-pages --page-server 127.0.0.1:\(port) --status-fd 3 "
            + "--image-path \(images) --work-path \(work) \(id) 3>\(status) >\(out) 2>&1; echo $? >\(rc)"
        try #require(Cmd.sh("(\(checkpoint)) </dev/null >/dev/null 2>&1 &").ok)
        try #require(waitFor(20) { (try? FileManager.default.attributesOfItem(atPath: status)[.size] as? Int) ?? 0 >= 1 || readFile(rc) != nil },
                     "no status byte: \(readFile(out) ?? "")\n\(tail(work + "/dump.log"))")
        try #require(readFile(rc) == nil, "checkpoint ended before serving: \(readFile(out) ?? "")\n\(tail(work + "/dump.log"))")
        let last = bundle.lastCount

        let daemonLog = restoreWork + "/lazy-pages.log"
        let background = sourceKilled ? " --background-after 30" : ""
        let daemon = Cmd.sh("\(Env.binary) lazy-pages --page-server --address 127.0.0.1 --port \(port) -D \(images) -W \(restoreWork) -o \(daemonLog) -v4\(background) </dev/null >\(restoreWork)/lazy-pages.out 2>&1 & echo $!")
        let daemonPid = try #require(Int32(daemon.out.trimmingCharacters(in: .whitespacesAndNewlines)), "\(daemon)")
        scratch.onTearDown { if access("/proc/\(daemonPid)", F_OK) == 0 { Glibc.kill(daemonPid, SIGKILL) } }
        try #require(waitFor(10) { access(restoreWork + "/lazy-pages.socket", F_OK) == 0 }, "lazy-pages did not listen: \(readFile(restoreWork + "/lazy-pages.out") ?? "")")

        let c = Runc(id: restoredID)
        let restore = Cmd.run([Env.runc, "--criu", Env.binary, "restore", "-d", "--lazy-pages", "--bundle", bundle.path,
                               "--image-path", images, "--work-path", restoreWork, restoredID], timeout: 60)
        try #require(restore.ok, "restore --lazy-pages: \(restore)\n\(tail(restoreWork + "/restore.log"))\n\(tail(daemonLog))")
        #expect(c.status == "running")
        if sourceKilled { return try expectTreeKilled(c, serving: images, daemonOut: restoreWork + "/lazy-pages.out") }
        if tree {
            // The child's own memory (the variable it filled after the fork) was left to the
            // daemon under the child's pid; what it still shares with init was restored.
            let childPending = (readFile(daemonLog) ?? "").split(separator: "\n").contains {
                $0.contains(" pages pending") && !$0.contains(") pid 1: ") && !$0.contains(": 0 pages pending")
            }
            #expect(childPending, "\(tail(daemonLog))")
        }
        #expect(waitFor(10) { bundle.lastCount >= last + 3 }, "no counting after restore")
        #expect(consecutive(bundle.count, from: 1), "count around \(last): \(bundle.count.suffix(12))")
        #expect(waitFor(20) { readFile(rc) != nil }, "runc checkpoint still serving: \(tail(work + "/dump.log"))\n\(tail(daemonLog))")
        #expect(readFile(rc)?.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "runc checkpoint: \(readFile(out) ?? "")\n\(tail(work + "/dump.log"))")
        // The shell's memory came from the checkpoint's side: "N of M pages served", N > 0.
        let served = (readFile(work + "/dump.log") ?? "").split(separator: "\n").first { $0.contains("pages served; session over") }
            .map { $0.split(separator: " ").compactMap { Int($0) } } ?? []
        #expect(served.count >= 2 && served[served.count - 2] > 0, "\(tail(work + "/dump.log"))")
        let (kill, delete, stopped) = c.killAndDelete()
        #expect(kill.ok && stopped && delete.ok, "teardown: \(kill)\n\(delete)")
    }

    /// The checkpoint's CRIU (ours, `swrk`, still serving pages) killed: the daemon's next
    /// request fails and its keeper kills every process of the restored container, by
    /// their pids on the host (the images hold the container's own).
    private func expectTreeKilled(_ c: Runc, serving images: String, daemonOut: String) throws {
        let initPid = try #require(c.pid, "no pid for the restored container")
        let children = (try? String(contentsOfFile: "/proc/\(initPid)/task/\(initPid)/children", encoding: .utf8)) ?? ""
        let restored = Set([initPid] + children.split(separator: " ").compactMap { Int32($0) })
        #expect(restored.count == 2, "the restored container is not init and a child: \(restored)")
        let swrk = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap(Int32.init).filter { pid in
            let argv = (FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return argv.first == Env.binary && argv.contains("swrk")
        } ?? []
        try #require(swrk.count == 1, "not one CRIU serving pages: \(swrk)")
        Glibc.kill(swrk[0], SIGKILL)
        #expect(waitFor(10) { c.status == "stopped" }, "the restored container runs on without its pages: \(c.status ?? "?")\n\(tail(daemonOut))")
        #expect(waitFor(5) { restored.allSatisfy { access("/proc/\($0)", F_OK) != 0 } }, "restored processes \(restored) still exist")
        // The keeper names what it killed: exactly the container's processes, by host pid.
        let line = (readFile(daemonOut) ?? "").split(separator: "\n").first { $0.contains("killed [") } ?? ""
        let killed = Set(line.drop(while: { $0 != "[" }).split(whereSeparator: { "[], ".contains($0) }).compactMap { Int32($0) })
        #expect(killed == restored, "keeper: '\(line)', the container's processes: \(restored)")
    }
}
