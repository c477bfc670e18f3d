import Foundation
import Engine
import LinuxKernel
import Images

extension RPCService {
    func restore(_ req: CriuReq) throws -> CriuResp {
        let (opts, dirs, log) = try prepare(req)
        let rootPid: Int32
        do {
            var options = try opts.restoreOptions(imagesDir: dirs.images, workDir: dirs.work)
            options.workDir = dirs.work
            options.extensions = restoreExtensions
            let notifier = RPCNotifier(socket: socket, enabled: opts.notifyScripts, log: log)
            options.notify = notifier.callback
            if opts.orphanPtsMaster { options.orphanPtsMaster = { try notifier.notify("orphan-pts-master", fds: [$0]) } }
            rootPid = try Restorer.restore(options: options, log: log).rootPid
        } catch {
            log.error("restore failed: \(RPCFailure(error).message)")
            throw error
        }
        log.info("restore finished: root pid \(rootPid)")
        var resp = CriuResp()
        resp.type = .restore
        resp.success = true
        resp.restore.pid = rootPid
        return resp
    }
}
