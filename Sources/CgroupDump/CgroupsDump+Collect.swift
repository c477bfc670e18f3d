import Foundation
import LinuxKernel
import Images
import ProcFS

extension CgroupsDump {
    /// Builds cgroup.img's entry: one set per distinct membership (the root's is 1), and per
    /// hierarchy the cgroup directories the tasks live in, with their subdirectories and
    /// settings. Tasks in a hierarchy's root cgroup add no directory: the root's settings
    /// belong to the host and cannot be restored.
    public static func collect(pids: [Int32], rootPid: Int32, log: Log) throws -> CgroupImage {
        let hierarchies = try CgroupHierarchies.mounted()
        let prefixes = try namespacePrefixes(rootPid: rootPid, log: log)
        var sets: [CgSetEntry] = []
        var setIDs: [Int32: UInt32] = [:]
        for pid in [rootPid] + pids.filter({ $0 != rootPid }) {
            let members = try membership(pid).map { m -> CgMemberEntry in
                var e = CgMemberEntry()
                e.name = m.controllers.joined(separator: ",")
                e.path = m.path
                if let p = prefixes[e.name], p > 0 { e.cgnsPrefix = UInt32(p) }
                return e
            }.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
            if let existing = sets.first(where: { $0.ctls == members }) {
                setIDs[pid] = existing.id
            } else {
                var s = CgSetEntry()
                s.id = UInt32(sets.count + 1)
                s.ctls = members
                sets.append(s)
                setIDs[pid] = s.id
                log.debug("cgroups: set \(s.id) (pid \(pid)): \(members.map { "\($0.name):\($0.path)" }.joined(separator: " "))")
            }
        }

        var entry = CgroupEntry()
        entry.sets = sets
        // Hierarchies in the order the dumper's own /proc/self/cgroup lists them, named
        // (name=...) ones last, as CRIU orders them.
        let own = try membership(getpid())
        let ordered = own.filter { $0.name == nil } + own.filter { $0.name != nil }
        for line in ordered {
            let name = line.controllers.joined(separator: ",")
            let paths = sets.flatMap { $0.ctls.filter { $0.name == name }.map(\.path) }
            guard !paths.isEmpty || line.name == nil else { continue }
            var controller = CgControllerEntry()
            guard let h = CgroupHierarchies.hierarchy(for: line, in: hierarchies) else {
                controller.cnames = line.isUnified ? [""] : line.controllers
                if paths.contains(where: { $0 != "/" }) {
                    log.warn("cgroups: hierarchy \(name.isEmpty ? "unified" : name) is not mounted here; its directories and settings are not dumped")
                }
                entry.controllers.append(controller)
                continue
            }
            controller.cnames = h.controllerNames
            for head in heads(paths) where head != "/" {
                controller.dirs.append(try directory(h, path: head, name: String(head.dropFirst()), log: log))
            }
            entry.controllers.append(controller)
        }
        return CgroupImage(entry: entry, setIDs: setIDs, rootSetID: 1)
    }

    static func membership(_ pid: Int32) throws -> [CgroupMembership] {
        do { return try CgroupMembership.read(pid: pid) } catch {
            throw CheckpointError(.notFound, "cgroups of pid \(pid): \(error)", cause: error)
        }
    }

    /// The paths no other path of the list contains: the tops of the directory trees.
    static func heads(_ paths: [String]) -> [String] {
        let unique = Array(Set(paths)).sorted()
        return unique.filter { p in !unique.contains { q in q != p && isUnder(p, q) } }
    }

    /// Whether cgroup path `p` is `q` or below it.
    static func isUnder(_ p: String, _ q: String) -> Bool {
        q == "/" || p == q || p.hasPrefix(q + "/")
    }

    /// One directory with its settings and, recursively, its subdirectories.
    static func directory(_ h: any CgroupHierarchy, path: String, name: String, log: Log) throws -> CgroupDirEntry {
        let dir = h.directory(path)
        var d = CgroupDirEntry()
        d.dirName = name
        d.dirPerms = try perms(dir)
        for prop in h.propertyNames(inDirectory: dir) {
            let file = dir + "/" + prop
            var p = CgroupPropEntry()
            p.name = prop
            p.perms = try perms(file)
            if prop == "cgroup.procs" || prop == "tasks" {
                p.value = ""
            } else {
                do { p.value = h.recordedValue(prop, raw: try CgroupFile.read(file)) } catch {
                    // write-only or refused reads (EINVAL/EOPNOTSUPP on some kernels): not a setting we can carry
                    log.warn("cgroups: \(error); \(prop) not dumped")
                    continue
                }
            }
            d.properties.append(p)
        }
        let children = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { child in
            var st = stat()
            return lstat(dir + "/" + child, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        }.sorted()
        for child in children {
            d.children.append(try directory(h, path: path == "/" ? "/" + child : path + "/" + child, name: child, log: log))
        }
        return d
    }

    static func perms(_ path: String) throws -> CgroupPerms {
        var st = stat()
        guard stat(path, &st) == 0 else { throw CheckpointError.errno("stat \(path)") }
        var p = CgroupPerms()
        p.mode = UInt32(st.st_mode)
        p.uid = st.st_uid
        p.gid = st.st_gid
        return p
    }

    /// Per hierarchy (member name), the length of the root task's cgroup namespace root in
    /// its path (cg_member_entry.cgns_prefix), when the root is in a cgroup namespace of its
    /// own: its path as seen from inside must end the path we see.
    static func namespacePrefixes(rootPid: Int32, log: Log) throws -> [String: Int] {
        guard let theirs = try? NamespaceSet.inode(of: .cgroup, pid: rootPid),
              let ours = try? NamespaceSet.inode(of: .cgroup, pid: getpid()), theirs != ours else { return [:] }
        let outside = try membership(rootPid)
        let inside = try NamespaceJoin.run(in: rootPid, [.cgroup]) { try membership(rootPid) }
        var prefixes: [String: Int] = [:]
        for ext in outside {
            guard let int = inside.first(where: { $0.hierarchyID == ext.hierarchyID && $0.controllers == ext.controllers }),
                  ext.path != int.path else { continue }
            let suffix = Array(int.path.utf8.dropFirst())
            let full = Array(ext.path.utf8)
            guard full.count >= suffix.count, Array(full.suffix(suffix.count)) == suffix else {
                throw CheckpointError(.invalidState, "cgroups of pid \(rootPid): \(int.path) (inside its cgroup namespace) is not the end of \(ext.path)")
            }
            var prefix = full.count - suffix.count
            if prefix > 0 && full[prefix - 1] == UInt8(ascii: "/") { prefix -= 1 }
            let name = ext.controllers.joined(separator: ",")
            prefixes[name] = prefix
            log.info("cgroups: pid \(rootPid) has its own cgroup namespace rooted at \(String(decoding: full.prefix(prefix), as: UTF8.self)) in \(name.isEmpty ? "unified" : name)")
        }
        return prefixes
    }
}
