import Foundation
import Engine
import Images

extension RPCService {
    func restore(_ req: CriuReq) throws -> CriuResp {
        let (opts, dirs, log) = try prepare(req)
        let rootPid: Int32
        do {
            // The engine does not dump terminals, so images with one are not ours to restore.
            if opts.orphanPtsMaster && FileManager.default.fileExists(atPath: dirs.images + "/tty-info.img") {
                throw CheckpointError.refused("orphan_pts_master: the images hold a terminal (tty-info.img); terminals are not supported yet")
            }
            var options = try opts.restoreOptions(imagesDir: dirs.images)
            options.workDir = dirs.work
            options.extensions = restoreExtensions
            let notifier = RPCNotifier(socket: socket, enabled: opts.notifyScripts, log: log)
            options.notify = notifier.callback
            rootPid = try runRestore(options: options, notifier: notifier, log: log)
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

    /// Stages of a restore, in CRIU's order (cr-restore.c: post-restore runs before the
    /// tasks are resumed); the two with a pid carry the restored root's pid.
    static let restoreStages: [(script: String, withPid: Bool)] = [
        ("setup-namespaces", true), ("post-setup-namespaces", false), ("post-restore", true),
        ("pre-resume", false), ("post-resume", false),
    ]

    /// The engine sends every stage at its place. A stage an engine build does not send is
    /// sent here once it returns (the tree already runs by then); if the client refuses
    /// one, the restored tree is killed, as a failed restore must leave nothing behind.
    private func runRestore(options: RestoreOptions, notifier: RPCNotifier, log: Log) throws -> Int32 {
        let result = try Restorer.restore(options: options, log: log)
        let pid = result.rootPid
        do {
            for stage in Self.restoreStages { try notifier.notify(stage.script, pid: stage.withPid ? pid : nil) }
        } catch {
            let tree = LiveTree(root: pid)
            tree.kill()
            log.info("killed the restored tree (\(tree.pids.count) processes)")
            throw error
        }
        return pid
    }
}
