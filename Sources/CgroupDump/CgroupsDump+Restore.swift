import Foundation
import LinuxKernel
import ProcFS
import Images

/// One hierarchy of the image matched to a hierarchy mounted here, with the rule that moves
/// its paths under the caller's new root.
struct RestoreHierarchy {
    let entry: CgControllerEntry
    let hierarchy: any CgroupHierarchy
    let newRoot: String?
    /// (dumped prefix, replacement): a member's cgroup namespace root, else the top of its tree.
    let rules: [(from: String, to: String)]

    /// The cgroup path at restore of a dumped path (CRIU's rewrite_cgroup_roots).
    func map(_ path: String) -> String {
        guard let rule = rules.first(where: { CgroupsDump.isUnder(path, $0.from) }) else { return path }
        let rest = rule.from == "/" ? path : String(path.dropFirst(rule.from.count))
        let joined = rule.to + (rest.hasPrefix("/") || rest.isEmpty ? rest : "/" + rest)
        return joined.isEmpty ? "/" : joined.replacingOccurrences(of: "//", with: "/")
    }

    func names(_ memberName: String) -> Bool {
        Set(memberName.split(separator: ",", omittingEmptySubsequences: false).map(String.init)) == Set(entry.cnames)
    }
}

extension CgroupsDump {
    /// Reads cgroup.img; nil when it holds no entry (the tree lived in the dumper's cgroups).
    public static func load(images: ImageDirectory) throws -> CgroupEntry? {
        guard images.exists(.cgroup) else { return nil }
        return try images.read(.cgroup, as: CgroupEntry.self).first
    }

    /// Creates the image's cgroup directories under `cgroupRoots` (controller -> new root,
    /// CRIU's cg_root; "cpu", "cpu,cpuacct", "name=systemd", "unified"), restores their
    /// settings as `mode` says, and moves `rootPid` into the root task's cgroups.
    public func setUp(rootPid: Int32, images: ImageDirectory, cgroupRoots: [String: String],
                      rootSetID: UInt32? = nil, log: Log) throws {
        guard mode != .ignore, let entry = try Self.load(images: images) else { return }
        let plan = try Self.plan(entry, cgroupRoots: cgroupRoots)
        for h in plan {
            for d in h.entry.dirs {
                try makeDirectories(d, parent: "/", in: h, settings: !deferSettings, log: log)
            }
        }
        let setID = try rootSetID ?? Self.rootSetID(images)
        try moveTask(rootPid, setID: setID, entry: entry, plan: plan, log: log)
    }

    /// The settings setUp left out with `deferSettings`; call before the tasks resume.
    public func applySettings(images: ImageDirectory, cgroupRoots: [String: String], log: Log) throws {
        guard mode != .ignore, let entry = try Self.load(images: images) else { return }
        for h in try Self.plan(entry, cgroupRoots: cgroupRoots) {
            for d in h.entry.dirs { try applySettings(d, parent: "/", in: h, log: log) }
        }
    }

    /// Moves another task of the tree into the cgroups of set `setID` (tasks inherit their
    /// parent's cgroups: only a task whose set differs from its parent's needs this).
    public func moveTask(_ pid: Int32, setID: UInt32, images: ImageDirectory, cgroupRoots: [String: String], log: Log) throws {
        guard mode != .ignore, let entry = try Self.load(images: images) else { return }
        try moveTask(pid, setID: setID, entry: entry, plan: try Self.plan(entry, cgroupRoots: cgroupRoots), log: log)
    }

    static func rootSetID(_ images: ImageDirectory) throws -> UInt32 {
        guard images.exists(.inventory) else { return 1 }
        let inv = try images.readOne(.inventory, as: InventoryEntry.self)
        return inv.hasRootCgSet && inv.rootCgSet != 0 ? inv.rootCgSet : 1
    }

    /// Matches the image's hierarchies to the mounted ones and works out the path rules.
    static func plan(_ entry: CgroupEntry, cgroupRoots: [String: String]) throws -> [RestoreHierarchy] {
        let mounted = try CgroupHierarchies.mounted()
        var plan: [RestoreHierarchy] = []
        for c in entry.controllers {
            let cnames = Set(c.cnames)
            let allNames: [String] = entry.sets.flatMap { s in s.ctls.map { $0.name } }
            let memberNames: Set<String> = Set(allNames.filter {
                Set($0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)) == cnames
            })
            guard let h = mounted.first(where: { Set($0.controllerNames) == cnames }) else {
                let used = entry.sets.contains { $0.ctls.contains { memberNames.contains($0.name) && $0.path != "/" } }
                if used || !c.dirs.isEmpty {
                    throw CheckpointError(.notFound, "cgroup hierarchy \(c.cnames == [""] ? "unified (cgroup2)" : c.cnames.joined(separator: ",")) of the image is not mounted here")
                }
                continue
            }
            let roots = Set(cgroupRoots.filter { h.isNamed(byKey: $0.key) }.map(\.value))
            guard roots.count <= 1 else {
                throw CheckpointError(.invalidArgument, "cgroup roots for hierarchy \(h.memberName.isEmpty ? "unified" : h.memberName) disagree: \(roots.sorted())")
            }
            let newRoot = roots.first
            var rules: [(from: String, to: String)] = []
            if let newRoot {
                let members: [CgMemberEntry] = entry.sets.flatMap { s in s.ctls.filter { memberNames.contains($0.name) } }
                // a cgroup namespace root becomes the new root (the container's own cgroup)
                for m in members where m.hasCgnsPrefix && m.cgnsPrefix > 0 {
                    let prefix = String(decoding: Array(m.path.utf8).prefix(Int(m.cgnsPrefix)), as: UTF8.self)
                    if !rules.contains(where: { $0.from == prefix }) { rules.append((prefix, newRoot)) }
                }
                for head in heads(members.map(\.path)) where !rules.contains(where: { isUnder(head, $0.from) }) {
                    rules.append((head, newRoot))
                }
            }
            plan.append(RestoreHierarchy(entry: c, hierarchy: h, newRoot: newRoot, rules: rules))
        }
        return plan
    }

    /// Creates `d` (and below) when missing; settings per mode.
    private func makeDirectories(_ d: CgroupDirEntry, parent: String, in h: RestoreHierarchy, settings: Bool, log: Log) throws {
        let dumped = parent == "/" ? "/" + d.dirName : parent + "/" + d.dirName
        let path = h.map(dumped)
        let dir = h.hierarchy.directory(path)
        if CgroupFile.exists(dir) {
            if mode == .strict {
                throw CheckpointError(.invalidState, "cgroup \(dir) exists already (manage mode strict)")
            }
            if mode == .full || mode == .props {
                try restorePerms(dir, d.hasDirPerms ? d.dirPerms : nil)
                for p in d.properties where h.hierarchy.isEarlyProperty(p.name) {
                    try restore(p, in: dir, h.hierarchy, log: log)
                }
                if settings { try applyLate(d, in: dir, h.hierarchy, log: log) }
            }
        } else {
            if mode == .props {
                throw CheckpointError(.notFound, "cgroup \(dir) does not exist (manage mode props restores settings only)")
            }
            try makeDirectory(dir, in: h.hierarchy, log: log)
            try restorePerms(dir, d.hasDirPerms ? d.dirPerms : nil)
            for p in d.properties where h.hierarchy.isEarlyProperty(p.name) {
                try restore(p, in: dir, h.hierarchy, log: log)
            }
            if settings { try applyLate(d, in: dir, h.hierarchy, log: log) }
            log.info("cgroups: created \(dir)")
        }
        for child in d.children {
            try makeDirectories(child, parent: dumped, in: h, settings: settings, log: log)
        }
    }

    private func applySettings(_ d: CgroupDirEntry, parent: String, in h: RestoreHierarchy, log: Log) throws {
        let dumped = parent == "/" ? "/" + d.dirName : parent + "/" + d.dirName
        let dir = h.hierarchy.directory(h.map(dumped))
        if mode == .full || mode == .props || state.created.contains(dir) {
            try applyLate(d, in: dir, h.hierarchy, log: log)
        }
        for child in d.children { try applySettings(child, parent: dumped, in: h, log: log) }
    }

    private func applyLate(_ d: CgroupDirEntry, in dir: String, _ h: any CgroupHierarchy, log: Log) throws {
        for p in d.properties where !h.isEarlyProperty(p.name) && p.name != "freezer.state" {
            try restore(p, in: dir, h, log: log)
        }
    }

    private func restore(_ p: CgroupPropEntry, in dir: String, _ h: any CgroupHierarchy, log: Log) throws {
        if p.hasPerms { try restorePerms(dir + "/" + p.name, p.perms) }
        try h.restore(property: p.name, value: p.value, inDirectory: dir, log: log)
    }

    /// mkdir -p, recording what it made for rollBack.
    func makeDirectory(_ dir: String, in h: any CgroupHierarchy, log: Log) throws {
        var missing: [String] = []
        var cur = dir
        while !CgroupFile.exists(cur), cur.count > h.mountPoint.count {
            missing.append(cur)
            cur = (cur as NSString).deletingLastPathComponent
        }
        for m in missing.reversed() {
            if mkdir(m, 0o755) != 0 && errno != EEXIST { throw CheckpointError.errno("mkdir cgroup \(m)") }
            state.created(m)
            try h.initialize(newDirectory: m)
        }
    }

    /// chmod/chown only where they differ: some cgroup files refuse a chmod.
    private func restorePerms(_ path: String, _ perms: CgroupPerms?) throws {
        guard let perms else { return }
        var st = stat()
        guard stat(path, &st) == 0 else { throw CheckpointError.errno("stat \(path)") }
        if UInt32(st.st_mode) & 0o7777 != perms.mode & 0o7777 && chmod(path, mode_t(perms.mode & 0o7777)) != 0 {
            throw CheckpointError.errno("chmod \(String(perms.mode & 0o7777, radix: 8)) \(path)")
        }
        if (st.st_uid != perms.uid || st.st_gid != perms.gid) && chown(path, perms.uid, perms.gid) != 0 {
            throw CheckpointError.errno("chown \(perms.uid):\(perms.gid) \(path)")
        }
    }

    private func moveTask(_ pid: Int32, setID: UInt32, entry: CgroupEntry, plan: [RestoreHierarchy], log: Log) throws {
        guard let set = entry.sets.first(where: { $0.id == setID }) else {
            throw CheckpointError(.image, "cgroup.img has no set \(setID) (sets: \(entry.sets.map(\.id)))")
        }
        let current = (try? CgroupMembership.read(pid: pid)) ?? []
        for m in set.ctls {
            guard let h = plan.first(where: { $0.names(m.name) }) else {
                if m.path == "/" { continue }
                throw CheckpointError(.notFound, "cgroup hierarchy \(m.name.isEmpty ? "unified" : m.name) of pid \(pid)'s cgroup \(m.path) is not mounted here")
            }
            let dir = h.hierarchy.directory(h.map(m.path))
            // Already there (inherited from the restorer): on v1 each move waits for an RCU
            // grace period (~2 ms a hierarchy), for nothing.
            if current.contains(where: { h.hierarchy.matches($0) && h.hierarchy.directory($0.path) == dir }) { continue }
            if !CgroupFile.exists(dir) {
                guard mode != .props else { throw CheckpointError(.notFound, "cgroup \(dir) does not exist (manage mode props)") }
                try makeDirectory(dir, in: h.hierarchy, log: log)
            }
            do { try h.hierarchy.move(pid: pid, toDirectory: dir) } catch let e as CheckpointError {
                throw CheckpointError(e.code, "move pid \(pid) into cgroup \(dir): \(e.message)", cause: e)
            }
        }
        log.info("cgroups: pid \(pid) moved into set \(setID)")
    }
}
