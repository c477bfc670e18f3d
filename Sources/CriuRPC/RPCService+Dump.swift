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
            if let lazy = options.lazyPages {
                // CRIU's status_ready: the status-ready notification (runc 1.1+ writes its
                // --status-fd on it) and status_fd's byte, once the images are written and
                // the pages wait.
                try options.notify?("status-ready", nil)
                if opts.hasStatusFd {
                    var ready: UInt8 = 0
                    if write(opts.statusFd, &ready, 1) != 1 { log.warn("status_fd \(opts.statusFd): \(Errno.current.detail)") }
                    close(opts.statusFd)
                }
                try lazy.serve(log: log)
            }
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
    /// still runs; it counts a zombie as stopped (runType reads the state from
    /// /proc/PID/stat). The killed root dies asynchronously: wait until it has exited, a
    /// bounded time. A pidfd polls readable at that moment, where a sleep between looks
    /// at /proc added up to its interval to every checkpoint. Its reaping is its parent's
    /// business (pid 1 here, which reaps only every ~2 s); CRIU does not wait for it either.
    private func waitReaped(_ pid: Int32, log: Log) {
        // ESRCH: already reaped.
        guard case .success(let pidfd) = Syscall.result(SyscallNumber.pidfdOpen, Int(pid)) else { return }
        defer { close(Int32(pidfd)) }
        var exited = pollfd(fd: Int32(pidfd), events: Int16(POLLIN), revents: 0)
        if case .success(0) = Syscall.valueOrErrno({ poll(&exited, 1, 10_000) }) {
            let state = (try? TaskStat.read(pid: pid, tid: nil))?.state ?? "?"
            log.warn("pid \(pid) still shows in /proc 10 s after the dump killed it (state \(state))")
        }
    }
}
