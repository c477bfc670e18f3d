import Foundation
import Engine
import LinuxKernel
import Images

/// criu_opts as the engine's DumpOptions/RestoreOptions. What the engine cannot honour is
/// refused before anything is touched, with a cr_errmsg that says what and why; options
/// that only tune CRIU internals we do not have are accepted and ignored.
extension CriuOpts {
    /// Throws for the first option the engine does not support.
    public func refuseUnsupported() throws {
        func refuse(_ m: String) throws -> Never { throw CheckpointError.refused(m) }
        if hasPs && ps.hasFd { try refuse("a page server socket handed over (ps.fd) is not supported yet; give its address and port") }
        if !joinNs.isEmpty {
            try refuse("joining existing namespaces is not supported yet (join_ns \(joinNs.map { "\($0.ns):\($0.nsFile)" }.joined(separator: ", ")))")
        }
        if !unixSkIno.isEmpty { try refuse("external unix sockets by inode are not supported yet (unix_sk_ino)") }
        if !veths.isEmpty { try refuse("veth pairs are not supported yet (veths)") }
        if !execCmd.isEmpty { try refuse("exec_cmd is not supported") }
        if !skipMnt.isEmpty { try refuse("skipping mounts is not supported yet (skip_mnt \(skipMnt.joined(separator: ", ")))") }
        if hasStatusFd && !lazyPages { try refuse("status_fd is only supported with lazy_pages (it says when the lazy pages are served)") }
        if hasPidfdStoreSk { try refuse("pidfd_store_sk is not supported (it serves pre-dump)") }
        if !lsmProfile.isEmpty && !(lsmProfile == "apparmor:unconfined" && !Self.appArmorEnabled) {
            try refuse("LSM profiles are not supported yet (lsm_profile \(lsmProfile)); only apparmor:unconfined where AppArmor is off")
        }
        if !lsmMountContext.isEmpty { try refuse("LSM mount contexts are not supported yet (lsm_mount_context)") }
        if tls { try refuse("TLS is not supported (it serves the page server)") }
        if UInt64(emptyNs) & ~NamespaceKind.net.cloneFlag.rawValue != 0 {
            try refuse("empty_ns 0x\(String(emptyNs, radix: 16)): only the network namespace (CLONE_NEWNET) can be made empty")
        }
        _ = try externalMounts()
        _ = try externalNamespaces()
        _ = try externalTerminals()
    }

    /// ext_mnt pairs and `external` entries of the form mnt[KEY]:VAL. At dump KEY is the
    /// mount point and VAL the name written in the images; at restore KEY is that name and
    /// VAL the path on this host (the same direction as the engine's externalMounts).
    public func externalMounts() throws -> [String: String] {
        var map: [String: String] = [:]
        for m in extMnt { map[m.key] = m.val }
        for e in external where !e.hasPrefix("net[") && !e.hasPrefix("tty[") && !e.hasPrefix("apparmor:") {
            // mnt[] (CRIU: mnt[]:FLAGS) asks for automatic external mounts, as auto_ext_mnt does.
            if e == "mnt[]" || e.hasPrefix("mnt[]:") { continue }
            guard e.hasPrefix("mnt["), let close = e.firstIndex(of: "]"),
                  e.index(after: close) < e.endIndex, e[e.index(after: close)] == ":" else {
                throw CheckpointError.refused("external \(e): only mnt[KEY]:VAL is supported yet")
            }
            let key = String(e[e.index(e.startIndex, offsetBy: 4)..<close])
            let val = String(e[e.index(close, offsetBy: 2)...])
            guard !key.isEmpty else { throw CheckpointError.refused("external \(e): expected mnt[KEY]:VAL or mnt[]") }
            map[key] = val
        }
        return map
    }

    /// auto_ext_mnt, or an `external` mnt[] entry, which CRIU reads the same way.
    public var autoExternalMounts: Bool {
        autoExtMnt || external.contains { $0 == "mnt[]" || $0.hasPrefix("mnt[]:") }
    }

    /// `external` entries tty[RDEV:DEV] (hex, as CRIU and LXC spell them): a terminal the
    /// caller owns, given back at restore by inherit_fd under the same key. apparmor:NAME
    /// (LXC at restore) is accepted where AppArmor is off, as lsm_profile is.
    public func externalTerminals() throws -> Set<String> {
        var keys: Set<String> = []
        for e in external where e.hasPrefix("tty[") || e.hasPrefix("apparmor:") {
            if e.hasPrefix("apparmor:") {
                guard e == "apparmor:unconfined" && !Self.appArmorEnabled else {
                    throw CheckpointError.refused("external \(e): AppArmor profiles are not supported yet; only apparmor:unconfined where AppArmor is off")
                }
                continue
            }
            let body = e.dropFirst(4)
            guard body.hasSuffix("]"), case let parts = body.dropLast().split(separator: ":"), parts.count == 2,
                  parts.allSatisfy({ UInt64($0, radix: 16) != nil }) else {
                throw CheckpointError.refused("external \(e): expected tty[RDEV:DEV] in hex")
            }
            keys.insert(e)
        }
        return keys
    }

    /// `external` entries net[INODE]:KEY, a network namespace the caller owns (runc
    /// sends it for a config.json network namespace with a path): "net[INODE]" -> KEY.
    public func externalNamespaces() throws -> [String: String] {
        var map: [String: String] = [:]
        for e in external where e.hasPrefix("net[") {
            guard let close = e.firstIndex(of: "]"), e.index(after: close) < e.endIndex, e[e.index(after: close)] == ":",
                  UInt64(e[e.index(e.startIndex, offsetBy: 4)..<close]) != nil else {
                throw CheckpointError.refused("external \(e): expected net[INODE]:KEY")
            }
            map[String(e[...close])] = String(e[e.index(close, offsetBy: 2)...])
        }
        return map
    }

    public func dumpOptions(imagesDir: String) throws -> DumpOptions {
        var o = DumpOptions(imagesDir: imagesDir)
        o.leaveRunning = leaveRunning
        o.leaveStopped = leaveStopped
        o.shellJob = shellJob
        o.extUnixSk = extUnixSk
        o.orphanPtsMaster = orphanPtsMaster
        o.fileLocks = fileLocks
        o.tcpEstablished = tcpEstablished
        o.tcpClose = tcpClose
        o.skipInFlight = tcpSkipInFlight
        o.networkLock = networkLockMethod
        o.ghostLimit = UInt64(ghostLimit)
        o.linkRemap = linkRemap
        if hasFreezeCgroup && !freezeCgroup.isEmpty { o.freezeCgroup = freezeCgroup }
        if hasRoot && !root.isEmpty { o.root = root }
        o.externalMounts = try externalMounts()
        o.externalNamespaces = try externalNamespaces()
        o.externalTerminals = try externalTerminals()
        o.autoExternalMounts = autoExternalMounts
        o.emptyNamespaces = UInt64(emptyNs)
        // As in CRIU, lazy_pages makes ps the port this dump serves the lazy pages on.
        if lazyPages {
            guard hasPs, ps.hasPort, ps.port > 0, ps.port <= Int32(UInt16.max) else {
                throw CheckpointError(.invalidArgument, "lazy_pages: needs ps.port (1-65535), where the dump serves the lazy pages")
            }
            o.lazyPages = try LazyPagesDump(address: PageServerAddress(host: nil, port: UInt16(ps.port)))
        } else if hasPs {
            guard ps.hasPort, ps.port > 0, ps.port <= Int32(UInt16.max) else {
                throw CheckpointError(.invalidArgument, "page server \(ps.address):\(ps.port): needs a port (1-65535)")
            }
            o.pageServer = PageServerAddress(host: ps.address.isEmpty ? nil : ps.address, port: UInt16(ps.port))
        }
        o.trackMemory = trackMem
        if hasParentImg && !parentImg.isEmpty { o.parentImages = parentImg }
        return o
    }

    /// With lazy_pages the restore connects to the lazy-pages daemon in `workDir` (else in
    /// the images directory) at once, as CRIU does, so a missing daemon fails it early.
    public func restoreOptions(imagesDir: String, workDir: String? = nil) throws -> RestoreOptions {
        var o = RestoreOptions(imagesDir: imagesDir)
        if lazyPages { o.lazyPages = try LazyPagesSocket.connect(directory: workDir ?? imagesDir) }
        // Over the RPC the service answers and exits: the tree never waits for us.
        o.detach = true
        o.shellJob = shellJob
        o.fileLocks = fileLocks
        o.tcpEstablished = tcpEstablished
        o.tcpClose = tcpClose
        o.networkLock = networkLockMethod
        if hasRoot && !root.isEmpty { o.root = root }
        o.restoreSibling = rstSibling
        o.externalMounts = try externalMounts()
        o.autoExternalMounts = autoExternalMounts
        o.emptyNamespaces = UInt64(emptyNs)
        for i in inheritFd {
            // The number is in our table: runc hands these fds to swrk from 4 on.
            guard fcntl(i.fd, F_GETFD) >= 0 else {
                throw CheckpointError(.invalidArgument, "inherit_fd \(i.key): fd \(i.fd) is not open in this process")
            }
            o.inheritFds[i.key] = i.fd
        }
        // A cg_root without ctrl applies to every controller: the key "" stands for that.
        for r in cgRoot { o.cgroupRoots[r.hasCtrl ? r.ctrl : ""] = r.path }
        return o
    }

    /// Whether the kernel runs AppArmor: without it every task is unconfined already.
    static var appArmorEnabled: Bool {
        (try? String(contentsOfFile: "/sys/module/apparmor/parameters/enabled", encoding: .utf8))?.hasPrefix("Y") ?? false
    }

    var networkLockMethod: NetworkLockMethod {
        switch networkLock {
        case .nftables: return .nftables
        case .skip: return .skip
        default: return .iptables
        }
    }

    /// The options CRIU has and we accept without acting on them, for the log.
    public var ignoredOptions: [String] {
        var out: [String] = []
        if evasiveDevices { out.append("evasive_devices") }
        if autoDedup { out.append("auto_dedup") }
        if hasTimeout { out.append("timeout \(timeout)") }
        if hasManageCgroupsMode { out.append("manage_cgroups_mode \(manageCgroupsMode)") }
        if hasCgroupProps || hasCgroupPropsFile || !cgroupDumpController.isEmpty { out.append("cgroup_props") }
        if !irmapScanPaths.isEmpty || forceIrmap { out.append("irmap") }
        if weakSysctls { out.append("weak_sysctls") }
        if hasPreDumpMode { out.append("pre_dump_mode") }
        // Permissions CRIU needs to dump such mounts; the engine dumps them without asking.
        if extSharing { out.append("ext_sharing") }
        if extMasters { out.append("ext_masters") }
        if !enableFs.isEmpty { out.append("enable_fs \(enableFs.joined(separator: ","))") }
        if !lsmProfile.isEmpty { out.append("lsm_profile \(lsmProfile) (AppArmor is off: every task is unconfined)") }
        return out
    }

    /// A size as CRIU's --ghost-limit takes it: bytes, or a number with K, M or G.
    public static func size(_ text: String, option: String) throws -> UInt32 {
        let units: [Character: UInt64] = ["K": 1 << 10, "k": 1 << 10, "M": 1 << 20, "m": 1 << 20, "G": 1 << 30, "g": 1 << 30]
        let unit = text.last.flatMap { units[$0] }
        guard let n = UInt64(unit == nil ? text : String(text.dropLast())), n.multipliedReportingOverflow(by: unit ?? 1).partialValue <= UInt64(UInt32.max),
              !n.multipliedReportingOverflow(by: unit ?? 1).overflow else {
            throw CheckpointError(.invalidArgument, "\(option) \(text): expected a size below 4G (bytes, or with K, M or G)")
        }
        return UInt32(n * (unit ?? 1))
    }
}
