import Foundation
import Engine
import LinuxKernel
import Images
import ProcFS

extension RPCService {
    func dump(_ req: CriuReq) throws -> CriuResp {
        let (opts, dirs, log) = try prepare(req)
        let pid = opts.pid
        do {
            // Without a pid CRIU dumps its client; runc always names the container's init.
            guard opts.hasPid, pid > 0 else {
                throw CheckpointError.refused("dumping the rpc client itself (no pid) is not supported")
            }
            var options = try opts.dumpOptions(imagesDir: dirs.images)
            options.workDir = dirs.work
            options.extensions = dumpExtensions
            if let path = options.freezeCgroup, let makeFreezer { options.freezer = try makeFreezer(path) }
            let notifier = RPCNotifier(socket: socket, enabled: opts.notifyScripts, log: log)
            options.notify = notifier.callback
            _ = try Dumper.dump(pid: pid, options: options, log: log)
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
    /// (The deaths reported to us as tracer are collected by the engine's kill.)
    private func waitReaped(_ pid: Int32, log: Log) {
        let deadline = Date().addingTimeInterval(10)
        while let s = try? TaskStat.read(pid: pid, tid: nil), !(s.state == "Z" && s.ppid != 1) {
            if Date() > deadline {
                log.warn("pid \(pid) still shows in /proc 10 s after the dump killed it (state \(s.state))")
                return
            }
            usleep(20_000)
        }
    }
}
