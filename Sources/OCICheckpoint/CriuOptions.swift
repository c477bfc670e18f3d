import ArgumentParser
import CriuRPC
import Engine
import Foundation
import Images
import LinuxKernel

/// CRIU's options that `dump` and `restore -D` share with the RPC (criu_opts): the command
/// line fills a CriuOpts and the RPC's own mapping turns it into the engine's options, so
/// the command line, RPC requests and config files accept and refuse the same things.
struct CriuOptions: ParsableArguments {
    @Option(name: [.customShort("W"), .customLong("work-dir")], help: "Directory for logs and stats (default: the images directory).")
    var workDir: String?

    @Option(name: .customLong("manage-cgroups"), help: "Cgroups at restore: none, props, soft (alone: soft), full, strict, ignore.")
    var manageCgroups: String?

    @Option(name: .customLong("cgroup-root"), help: "[CONTROLLER:]PATH: where the tree's cgroups go (restore) or are rooted (dump).")
    var cgroupRoots: [String] = []

    @Option(name: [.customShort("M"), .customLong("ext-mount-map")], help: "KEY:VALUE of an external mount (dump: mount point:name; restore: name:host path), or auto.")
    var extMountMaps: [String] = []

    @Option(name: .customLong("external"), help: "An external resource: mnt[KEY]:VAL, net[INODE]:KEY, tty[RDEV:DEV].")
    var externals: [String] = []

    @Option(name: .customLong("enable-fs"), help: "File systems to dump as they are (comma separated).")
    var enableFs: [String] = []

    @Flag(name: .customLong("enable-external-sharing"), help: "Allow external mounts in shared peer groups.")
    var externalSharing = false
    @Flag(name: .customLong("enable-external-masters"), help: "Allow external mounts that are slaves of outside mounts.")
    var externalMasters = false

    @Flag(name: .customLong("link-remap"), help: "A deleted file still linked under another name gets a link of its own (link_remap.N beside it) until the restore.")
    var linkRemap = false
    @Option(name: .customLong("ghost-limit"), help: "The largest deleted-but-open file whose contents go into the images (bytes, or with K, M, G; default 1M).")
    var ghostLimit: String?
    @Flag(name: .customLong("force-irmap"), help: "Resolve inotify watch paths (the engine always does, through file handles).")
    var forceIrmap = false
    @Flag(name: .customLong("skip-in-flight"), help: "Leave out TCP connections not yet accepted.")
    var skipInFlight = false
    @Flag(name: .customLong("evasive-devices"), help: "Accepted as CRIU's; the engine never opens devices by other paths.")
    var evasiveDevices = false
    @Flag(name: .customLong("weak-sysctls"), help: "Accepted as CRIU's.")
    var weakSysctls = false

    @Option(name: .customLong("inherit-fd"), help: "fd[N]:KEY: restore the resource named KEY from our descriptor N.")
    var inheritFds: [String] = []

    @Option(name: .customLong("lsm-profile"), help: "TYPE:NAME of the restored tasks' security profile.")
    var lsmProfile: String?

    @Flag(name: .customLong("tcp-close"), help: "Dump TCP connections without their state (no lock); restore them closed.")
    var tcpClose = false

    @Option(name: .customLong("network-lock"), help: "iptables, nftables or skip.")
    var networkLock: String?

    @Flag(name: .customLong("track-mem"), help: "Track memory changes for a later pre-dump.")
    var trackMem = false
    @Option(name: .customLong("prev-images-dir"), help: "The images of the previous pre-dump.")
    var prevImagesDir: String?
    @Flag(name: .customLong("lazy-pages"), help: "Restore memory on demand.")
    var lazyPages = false
    @Flag(name: .customLong("page-server"), help: "Send pages to a page server.")
    var pageServer = false
    @Option(name: .customLong("address"), help: "Page server address.") var address: String?
    @Option(name: .customLong("port"), help: "Page server port.") var port: Int32?

    /// Fills the criu_opts fields these options stand for (and --root and --empty-ns, which
    /// `restore` shares with its container form); throws for a malformed value.
    func apply(to o: inout CriuOpts, root: String?, emptyNs: [String]) throws {
        if let root { o.root = root }
        if let m = manageCgroups {
            o.manageCgroups = true
            o.manageCgroupsMode = try Self.cgroupMode(m)
        }
        for r in cgroupRoots {
            var c = CgroupRoot()
            if let colon = r.firstIndex(of: ":"), !r.hasPrefix("/") {
                c.ctrl = String(r[..<colon]); c.path = String(r[r.index(after: colon)...])
            } else {
                c.path = r
            }
            guard c.path.hasPrefix("/") else { throw CheckpointError(.invalidArgument, "--cgroup-root \(r): the path must be absolute") }
            o.cgRoot.append(c)
        }
        for m in extMountMaps {
            if m == "auto" { o.autoExtMnt = true; continue }
            guard let colon = m.firstIndex(of: ":") else { throw CheckpointError(.invalidArgument, "--ext-mount-map \(m): expected KEY:VALUE or auto") }
            var e = ExtMountMap()
            e.key = String(m[..<colon]); e.val = String(m[m.index(after: colon)...])
            o.extMnt.append(e)
        }
        o.external += externals
        o.enableFs += enableFs.flatMap { $0.split(separator: ",").map(String.init) }
        if externalSharing { o.extSharing = true }
        if externalMasters { o.extMasters = true }
        if linkRemap { o.linkRemap = true }
        if let ghostLimit { o.ghostLimit = try CriuOpts.size(ghostLimit, option: "--ghost-limit") }
        if forceIrmap { o.forceIrmap = true }
        if skipInFlight { o.tcpSkipInFlight = true }
        if tcpClose { o.tcpClose = true }
        if evasiveDevices { o.evasiveDevices = true }
        if weakSysctls { o.weakSysctls = true }
        for ns in emptyNs {
            guard ns == "net" else { throw CheckpointError.refused("--empty-ns \(ns): only net can be made empty") }
            o.emptyNs |= UInt32(CloneFlags.newNet.rawValue)
        }
        for i in inheritFds {
            // fd[N]:KEY, N one of our descriptors.
            guard i.hasPrefix("fd["), let close = i.firstIndex(of: "]"), i.index(after: close) < i.endIndex,
                  i[i.index(after: close)] == ":", let n = Int32(i[i.index(i.startIndex, offsetBy: 3)..<close]) else {
                throw CheckpointError(.invalidArgument, "--inherit-fd \(i): expected fd[N]:KEY")
            }
            var f = InheritFd()
            f.fd = n; f.key = String(i[i.index(close, offsetBy: 2)...])
            o.inheritFd.append(f)
        }
        if let lsmProfile { o.lsmProfile = lsmProfile }
        if let networkLock {
            switch networkLock {
            case "iptables": o.networkLock = .iptables
            case "nftables": o.networkLock = .nftables
            case "skip", "none": o.networkLock = .skip
            default: throw CheckpointError(.invalidArgument, "--network-lock \(networkLock): expected iptables, nftables or skip")
            }
        }
        if trackMem { o.trackMem = true }
        if let prevImagesDir { o.parentImg = prevImagesDir }
        if lazyPages { o.lazyPages = true }
        // As in CRIU, --address and --port alone name no page server.
        if pageServer {
            var ps = CriuPageServerInfo()
            if let address { ps.address = address }
            if let port { ps.port = port }
            o.ps = ps
        }
    }

    /// Where dump --lazy-pages listens: --address (any when absent) and --port.
    func lazyPagesAddress() throws -> PageServerAddress {
        guard let port, port > 0, port <= Int32(UInt16.max) else {
            throw CheckpointError(.invalidArgument, "dump --lazy-pages: needs --port (1-65535) to serve the lazy pages on")
        }
        return PageServerAddress(host: address, port: UInt16(port))
    }

    static func cgroupMode(_ name: String) throws -> CriuCgMode {
        switch name {
        case "none": return .cgNone
        case "props": return .props
        case "soft": return .soft
        case "full": return .full
        case "strict": return .strict
        case "ignore": return .ignore
        default: throw CheckpointError(.invalidArgument, "--manage-cgroups \(name): unknown cgroups mode (none, props, soft, full, strict, ignore)")
        }
    }
}
