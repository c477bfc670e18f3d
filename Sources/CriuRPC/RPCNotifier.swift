import Foundation
import Engine
import LinuxKernel
import Images

/// CRIU's notify scripts over the RPC: each stage becomes criu_resp{NOTIFY, notify{script,
/// pid}}, and the operation waits for criu_req{NOTIFY, notify_success}. Only when the request
/// asked for notify_scripts; the engine calls every stage at its place, each once.
final class RPCNotifier {
    private let socket: RPCSocket
    private let enabled: Bool
    private let log: Log
    private(set) var sent: [String] = []
    /// Set once the peer refused a stage or the channel broke: nothing more is sent.
    private(set) var broken = false

    init(socket: RPCSocket, enabled: Bool, log: Log) {
        self.socket = socket
        self.enabled = enabled
        self.log = log
    }

    /// The engine's callback.
    var callback: Notify { { [self] script, pid in try self.notify(script, pid: pid) } }

    /// `fds` travel with the message (SCM_RIGHTS): "orphan-pts-master" carries a pty master.
    func notify(_ script: String, pid: Int32? = nil, fds: [Int32] = []) throws {
        if !fds.isEmpty && !enabled {
            throw CheckpointError(.invalidArgument, "notify \(script): the rpc client did not ask for notify_scripts, so its descriptor cannot be sent")
        }
        guard enabled, !sent.contains(script) else { return }
        guard !broken else {
            throw CheckpointError(.invalidState, "notify \(script): the rpc client refused an earlier stage")
        }
        sent.append(script)
        var resp = CriuResp()
        resp.type = .notify
        resp.success = true
        resp.notify.script = script
        if let pid { resp.notify.pid = pid }
        log.debug("rpc: notify \(script)\(pid.map { " pid \($0)" } ?? "")")
        do {
            try socket.send(resp, fds: fds)
            guard let (answer, fds) = try socket.receive(CriuReq.self) else {
                throw CheckpointError(.invalidState, "notify \(script): the rpc client closed the connection")
            }
            fds.forEach { close($0) }
            guard answer.type == .notify else {
                throw CheckpointError(.invalidArgument, "notify \(script): expected a NOTIFY answer, got \(answer.type)")
            }
            guard answer.notifySuccess else {
                throw CheckpointError(.invalidState, "notify \(script): the rpc client answered failure (its hook for \(script) failed)")
            }
        } catch {
            broken = true
            log.error("\(error)")
            throw error
        }
    }

}
