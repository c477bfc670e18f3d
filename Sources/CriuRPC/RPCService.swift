import Foundation
import Engine
import LinuxKernel
import Images
import SwiftProtobuf

/// CRIU's RPC service (`criu swrk FD`), as runc drives it: read a criu_req, answer with
/// criu_resp (after any NOTIFY exchanges), then read the next request only if this one
/// asked for keep_open and succeeded — runc runs one request per service process.
public final class RPCService {
    public let socket: RPCSocket
    /// What the container modules add to dumps and restores over the RPC.
    public var dumpExtensions: [DumpExtension] = []
    public var restoreExtensions: [RestoreExtension] = []
    /// The freezer for criu_opts.freeze_cgroup (a cgroup directory), when one is wired.
    public var makeFreezer: ((String) throws -> TreeFreezer)?

    /// The version we answer: the CRIU release whose RPC we implement.
    public static let version = (major: CriuRelease.major, minor: CriuRelease.minor, sublevel: CriuRelease.sublevel, name: "ocicheckpoint")

    public init(socket: RPCSocket) { self.socket = socket }

    /// Serves until a request without keep_open is answered, or the client closes.
    /// Returns whether the last request succeeded (the service's exit status).
    public func run() -> Bool {
        var lastSucceeded = false
        while true {
            let received: (CriuReq, [Int32])?
            do { received = try socket.receive(CriuReq.self) } catch {
                Self.report("\(error)")
                return false
            }
            // A client that closes between requests ends the service.
            guard let (req, fds) = received else { return lastSucceeded }
            fds.forEach { close($0) }
            let resp = handle(req)
            do { try socket.send(resp) } catch {
                Self.report("answer to \(req.type): \(error)")
                return false
            }
            lastSucceeded = resp.success
            guard req.keepOpen && resp.success else { return resp.success }
        }
    }

    /// One request's answer; every failure becomes success false with cr_errno and cr_errmsg.
    func handle(_ req: CriuReq) -> CriuResp {
        do {
            switch req.type {
            case .version: return versionResponse()
            case .featureCheck: return featureResponse(req)
            case .check: return try checkResponse()
            case .dump: return try dump(req)
            case .restore: return try restore(req)
            case .waitPid: return try waitPid(req)
            case .preDump: return try preDump(req)
            case .singlePreDump:
                throw CheckpointError.refused("single pre-dump (of a tree that is not tracked between calls) is not supported yet")
            case .pageServer, .pageServerChld:
                throw CheckpointError.refused("starting a page server over the RPC (PAGE_SERVER) is not supported yet: run `page-server`; dumps send to one through opts.ps")
            case .cpuinfoDump, .cpuinfoCheck:
                throw CheckpointError.refused("cpuinfo images are not supported yet")
            case .notify:
                throw CheckpointError(.invalidArgument, "NOTIFY request outside a notification")
            case .empty:
                throw CheckpointError(.invalidArgument, "empty request")
            }
        } catch {
            return Self.failure(req.type, error)
        }
    }

    static func failure(_ type: CriuReqType, _ error: Error) -> CriuResp {
        let f = RPCFailure(error)
        var resp = CriuResp()
        resp.type = type
        resp.success = false
        resp.crErrno = f.errno
        resp.crErrmsg = f.message
        return resp
    }

    private func versionResponse() -> CriuResp {
        var resp = CriuResp()
        resp.type = .version
        resp.success = true
        resp.version.majorNumber = Self.version.major
        resp.version.minorNumber = Self.version.minor
        resp.version.sublevel = Self.version.sublevel
        resp.version.name = Self.version.name
        return resp
    }

    /// Only what really works is true: memory tracking where the kernel has it (userfaultfd
    /// write-protect and PAGEMAP_SCAN), lazy pages where userfaultfd is; not the pidfd store.
    private func featureResponse(_ req: CriuReq) -> CriuResp {
        var resp = CriuResp()
        resp.type = .featureCheck
        resp.success = true
        var features = req.features
        if features.hasMemTrack { features.memTrack = WriteTracking.supported }
        if features.hasLazyPages { features.lazyPages = access("/proc/sys/vm/unprivileged_userfaultfd", F_OK) == 0 }
        if features.hasPidfdStore { features.pidfdStore = false }
        resp.features = features
        return resp
    }

    private func checkResponse() throws -> CriuResp {
        let missing = KernelFeatures.probe().filter { $0.required && !$0.present }
        guard missing.isEmpty else {
            throw CheckpointError(.unsupported, "kernel check failed: missing \(missing.map(\.name).joined(separator: ", "))")
        }
        var resp = CriuResp()
        resp.type = .check
        resp.success = true
        return resp
    }

    /// libcriu's wait for a restored child (the tree's root is ours unless rst_sibling).
    private func waitPid(_ req: CriuReq) throws -> CriuResp {
        guard req.hasPid else { throw CheckpointError(.invalidArgument, "WAIT_PID without a pid") }
        var status: Int32 = 0
        try Syscall.retrying("wait for pid \(req.pid)") { waitpid(pid_t(req.pid), &status, 0) }
        var resp = CriuResp()
        resp.type = .waitPid
        resp.success = true
        resp.status = status
        return resp
    }

    /// The options of a DUMP or RESTORE with the config file applied, checked, and the
    /// directories and log it names.
    func prepare(_ req: CriuReq) throws -> (CriuOpts, RequestDirectories, Log) {
        guard req.hasOpts else { throw CheckpointError(.invalidArgument, "\(req.type) request without opts") }
        var opts = req.opts
        // A bad config file is reported once the log is open, so it lands there too.
        var configError: Error?
        if opts.hasConfigFile && !opts.configFile.isEmpty {
            do { try CriuConfigFile.apply(path: opts.configFile, to: &opts) } catch { configError = error }
        }
        let dirs = try RequestDirectories.resolve(opts, peer: try? socket.peerPid())
        let log = try dirs.openLog(opts)
        log.debug("rpc request: \(req.textFormatString().replacingOccurrences(of: "\n", with: " "))")
        log.info("images \(dirs.images), work \(dirs.work)")
        do {
            if let configError { throw configError }
            try opts.refuseUnsupported()
        } catch {
            log.error("\(req.type) refused: \(RPCFailure(error).message)")
            throw error
        }
        if !opts.ignoredOptions.isEmpty { log.info("accepted, not acted on: \(opts.ignoredOptions.joined(separator: ", "))") }
        return (opts, dirs, log)
    }

    private static func report(_ message: String) {
        FileHandle.standardError.write("swrk: \(message)\n".data(using: .utf8)!)
    }
}
