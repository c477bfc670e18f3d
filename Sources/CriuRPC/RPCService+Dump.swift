import Foundation
import Engine
import Images

extension RPCService {
    /// Stages of a dump, in CRIU's order.
    static let dumpStages = ["pre-dump", "network-lock", "post-dump", "network-unlock"]

    func dump(_ req: CriuReq) throws -> CriuResp {
        let (opts, dirs, log) = try prepare(req)
        let pid = opts.pid
        do {
            // Without a pid CRIU dumps its client; runc always names the container's init.
            guard opts.hasPid, pid > 0 else {
                throw CheckpointError.refused("dumping the rpc client itself (no pid) is not supported")
            }
            if opts.orphanPtsMaster, let t = LiveTree(root: pid).terminal() {
                throw CheckpointError.refused("orphan_pts_master: pid \(t.pid) has fd \(t.fd) on terminal \(t.target); terminals are not supported yet")
            }
            var options = try opts.dumpOptions(imagesDir: dirs.images)
            options.workDir = dirs.work
            options.extensions = dumpExtensions
            if let path = options.freezeCgroup, let makeFreezer { options.freezer = try makeFreezer(path) }
            let notifier = RPCNotifier(socket: socket, enabled: opts.notifyScripts, log: log)
            options.notify = notifier.callback
            try runDump(pid: pid, options: options, notifier: notifier, log: log)
        } catch {
            log.error("dump of pid \(pid) failed: \(RPCFailure(error).message)")
            throw error
        }
        if !opts.leaveRunning { waitReaped(pid, log: log) }
        log.info("dump of pid \(pid) finished")
        var resp = CriuResp()
        resp.type = .dump
        resp.success = true
        resp.dump.restored = false
        return resp
    }

    /// runc destroys the container as soon as DUMP succeeds and refuses while its init
    /// still shows in /proc. The killed root dies asynchronously and, when its parent is
    /// pid 1, stays a zombie until init reaps it (every ~2 s on this kind of machine):
    /// wait for that, a bounded time. A zombie with another parent is that parent's to reap.
    /// Tasks killed while still traced by us report their death to us first; collecting
    /// it (waitpid __WALL) lets a pid namespace's init finish dying.
    private func waitReaped(_ pid: Int32, log: Log) {
        func status() -> (state: Substring, ppid: Substring)? {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 ? (fields[0], fields[1]) : nil
        }
        let deadline = Date().addingTimeInterval(10)
        while let s = status(), !(s.state == "Z" && s.ppid != "1") {
            var st: Int32 = 0
            while waitpid(-1, &st, WNOHANG | __WALL) > 0 {}
            if Date() > deadline {
                log.warn("pid \(pid) still shows in /proc 10 s after the dump killed it (state \(s.state))")
                return
            }
            usleep(20_000)
        }
    }

    /// The engine sends every stage at its place (pre-dump before freezing, network-lock
    /// once frozen, post-dump when the images are complete, network-unlock last). A stage
    /// an engine build does not send is sent here after it returns, so that clients such as
    /// runc always see the whole sequence; RPCNotifier never sends a stage twice.
    private func runDump(pid: Int32, options: DumpOptions, notifier: RPCNotifier, log: Log) throws {
        do {
            _ = try Dumper.dump(pid: pid, options: options, log: log)
            try notifier.catchUp(Self.dumpStages)
        } catch {
            // A network the client locked is unlocked again, as CRIU does on failure.
            if notifier.sent.contains("network-lock") { notifier.notifyBestEffort("network-unlock") }
            throw error
        }
    }
}
