import Foundation
import Engine
import LinuxKernel
import Images

extension RPCService {
    /// PRE_DUMP (runc's `checkpoint --pre-dump`): pages and write tracking only; the tree
    /// keeps running whatever happens.
    func preDump(_ req: CriuReq) throws -> CriuResp {
        let (opts, dirs, log) = try prepare(req)
        let pid = opts.pid
        guard opts.hasPid, pid > 0 else {
            throw CheckpointError.refused("pre-dumping the rpc client itself (no pid) is not supported")
        }
        if opts.lazyPages { throw CheckpointError.refused("Cannot pre-dump with lazy_pages") }
        do {
            var options = try opts.dumpOptions(imagesDir: dirs.images)
            options.workDir = dirs.work
            if let path = options.freezeCgroup, let makeFreezer { options.freezer = try makeFreezer(path) }
            _ = try PreDumper.preDump(pid: pid, options: options, log: log)
        } catch {
            log.error("pre-dump of pid \(pid) failed: \(RPCFailure(error).message)")
            throw error
        }
        log.info("pre-dump of pid \(pid) finished")
        var resp = CriuResp()
        resp.type = req.type
        resp.success = true
        return resp
    }
}
