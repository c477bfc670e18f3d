import Foundation
import LinuxKernel
import Images

/// CRIU's configuration file for RPC requests (criu_opts.config_file; runc names
/// /etc/criu/runc.conf): one option a line, as on criu's command line without the leading
/// dashes, `#` starts a comment. As in CRIU, its options take precedence over the
/// request's. A missing file is no error.
enum CriuConfigFile {
    static func apply(path: String, to opts: inout CriuOpts) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = words.first else { continue }
            let name = first.hasPrefix("--") ? String(first.dropFirst(2)) : first
            let value = words.dropFirst().joined(separator: " ").trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            try apply(name, value, to: &opts, at: "\(path):\(n + 1)")
        }
    }

    private static func apply(_ name: String, _ value: String, to o: inout CriuOpts, at where_: String) throws {
        func needValue() throws -> String {
            guard !value.isEmpty else { throw CheckpointError(.invalidArgument, "config_file \(where_): \(name) needs a value") }
            return value
        }
        switch name {
        case "tcp-established": o.tcpEstablished = true
        case "file-locks": o.fileLocks = true
        case "ext-unix-sk": o.extUnixSk = true
        case "shell-job": o.shellJob = true
        case "leave-running": o.leaveRunning = true
        case "lazy-pages": o.lazyPages = true
        case "track-mem": o.trackMem = true
        case "evasive-devices": o.evasiveDevices = true
        case "tcp-close": o.tcpClose = true
        case "auto-dedup": o.autoDedup = true
        case "link-remap": o.linkRemap = true
        case "manage-cgroups": o.manageCgroups = true
        case "leave-stopped": o.leaveStopped = true
        case "enable-external-sharing": o.extSharing = true
        case "enable-external-masters": o.extMasters = true
        case "force-irmap": o.forceIrmap = true
        case "enable-fs": o.enableFs += try needValue().split(separator: ",").map(String.init)
        case "lsm-profile": o.lsmProfile = try needValue()
        case "display-stats", "weak-sysctls": break
        case "skip-in-flight": o.tcpSkipInFlight = true
        case "network-lock":
            switch try needValue() {
            case "iptables": o.networkLock = .iptables
            case "nftables": o.networkLock = .nftables
            case "skip", "none": o.networkLock = .skip
            default: throw CheckpointError(.invalidArgument, "config_file \(where_): network-lock \(value): expected iptables, nftables or skip")
            }
        case "log-file": o.logFile = try needValue()
        case "v0", "v1", "v2", "v3", "v4": o.logLevel = Int32(String(name.dropFirst()))!
        case "timeout": o.timeout = UInt32(try needValue()) ?? 0
        case "root": o.root = try needValue()
        case "ghost-limit": o.ghostLimit = try CriuOpts.size(try needValue(), option: "config_file \(where_): ghost-limit")
        case "freeze-cgroup": o.freezeCgroup = try needValue()
        case "external": o.external.append(try needValue())
        case "ext-mount-map":
            let v = try needValue()
            guard let colon = v.firstIndex(of: ":") else {
                throw CheckpointError(.invalidArgument, "config_file \(where_): ext-mount-map \(v): expected KEY:VAL")
            }
            var m = ExtMountMap()
            m.key = String(v[..<colon])
            m.val = String(v[v.index(after: colon)...])
            o.extMnt.append(m)
        default:
            throw CheckpointError.refused("config_file \(where_): option \(name) is not supported")
        }
    }
}
