import Foundation
import LinuxKernel
import ProcFS

/// One mounted cgroup hierarchy: a v1 hierarchy (one or more controllers, or a named one
/// such as name=systemd) or the v2 unified one. What differs between v1 and v2 (which
/// files are settings, which must be written before a task joins, how a task moves, how
/// the freezer works) lives behind this interface; CgroupsDump is written against it.
public protocol CgroupHierarchy {
    /// Where the hierarchy's root is mounted (as the dumper or restorer sees it).
    var mountPoint: String { get }
    /// The controllers as cg_controller_entry.cnames: ["cpu", "cpuacct"], ["name=systemd"],
    /// or [""] for the unified hierarchy.
    var controllerNames: [String] { get }
    /// Settings to dump from one cgroup directory, in the order they must be restored;
    /// only files that exist there.
    func propertyNames(inDirectory path: String) -> [String]
    /// Settings written when a directory is created, before any child directory or task:
    /// cpuset.cpus/mems (a task cannot join an empty cpuset), devices.list, v2 subtree_control.
    func isEarlyProperty(_ name: String) -> Bool
    /// The value as the image records it (CRIU's conventions: LLONG_MAX as -1,
    /// memory.oom_control as its oom_kill_disable flag).
    func recordedValue(_ name: String, raw: String) -> String
    /// Writes one recorded setting back.
    func restore(property name: String, value: String, inDirectory path: String, log: Log) throws
    /// Makes a directory the restore just created usable before its recorded settings
    /// arrive (v1 cpuset: a task cannot join a cpuset with no cpus or mems).
    func initialize(newDirectory path: String) throws
    /// Moves a whole process into the cgroup at `path` (absolute, under mountPoint).
    func move(pid: Int32, toDirectory path: String) throws
    /// Moves one thread of the caller; v2 allows it only inside threaded subtrees.
    func moveThread(tid: Int32, toDirectory path: String) throws
}

extension CgroupHierarchy {
    /// The controllers field of /proc/PID/cgroup lines of this hierarchy ("cpu,cpuacct",
    /// "name=systemd", "" for v2): cg_member_entry.name.
    public var memberName: String { controllerNames.joined(separator: ",") }

    public var isUnified: Bool { controllerNames == [""] }

    /// The directory of cgroup `path` ("/a/b", relative to the hierarchy's root).
    public func directory(_ path: String) -> String {
        let trimmed = path.split(separator: "/").joined(separator: "/")
        return trimmed.isEmpty ? mountPoint : mountPoint + "/" + trimmed
    }

    /// Whether this hierarchy is the one a /proc/PID/cgroup line names.
    public func matches(_ m: CgroupMembership) -> Bool {
        if isUnified { return m.isUnified }
        return !m.isUnified && Set(m.controllers) == Set(controllerNames)
    }

    /// Whether this hierarchy has the controller or name a cg_root key names: "memory",
    /// "cpu,cpuacct", "name=systemd" or "systemd", "" or "unified" for v2.
    public func isNamed(byKey key: String) -> Bool {
        if isUnified { return key == "" || key == "unified" }
        let names = key.split(separator: ",").map(String.init)
        return !names.isEmpty && names.allSatisfy { n in
            controllerNames.contains(n) || controllerNames.contains("name=" + n)
        }
    }

    func writeFile(_ path: String, _ value: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open \(path) to write \(value)") }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n != bytes.count { throw CheckpointError.errno("write \"\(value)\" to \(path)") }
    }
}

/// File helpers shared by both implementations.
enum CgroupFile {
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// A cgroup file's contents without the trailing newline.
    static func read(_ path: String) throws -> String {
        var text: String
        do { text = try readProcFile(path) } catch {
            throw CheckpointError(.kernel, "read \(path): \(error)", cause: error)
        }
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// CRIU's convention: a value that reads as LLONG_MAX is recorded as -1 ("no limit").
    static func unlimitedAsMinusOne(_ raw: String) -> String {
        raw == String(Int64.max) ? "-1" : raw
    }
}

/// The cgroup hierarchies mounted in the caller's mount namespace, from /proc/self/mountinfo.
public enum CgroupHierarchies {
    public static func mounted() throws -> [any CgroupHierarchy] {
        let mounts: [MountInfoEntry]
        do { mounts = try MountInfoEntry.read(path: "/proc/self/mountinfo") } catch {
            throw CheckpointError(.kernel, "read /proc/self/mountinfo: \(error)", cause: error)
        }
        var found: [any CgroupHierarchy] = []
        var seen = Set<[String]>()
        for mount in mounts where mount.root == "/" {
            switch mount.fsType {
            case "cgroup2":
                if seen.insert([""]).inserted { found.append(CgroupV2Hierarchy(mountPoint: mount.mountPoint)) }
            case "cgroup":
                let names = mount.superOptionList.filter { !notControllers.contains($0) && !$0.hasPrefix("release_agent=") }
                guard !names.isEmpty else { continue }
                if seen.insert(names.sorted()).inserted {
                    found.append(CgroupV1Hierarchy(mountPoint: mount.mountPoint, controllerNames: names))
                }
            default:
                continue
            }
        }
        return found
    }

    /// Super options of a v1 cgroup mount that name no controller.
    private static let notControllers: Set<String> = [
        "rw", "ro", "clone_children", "noprefix", "xattr", "none", "cpuset_v2_mode", "favordynmods",
    ]

    /// The mounted hierarchy a /proc/PID/cgroup line names, if any.
    public static func hierarchy(for m: CgroupMembership, in hierarchies: [any CgroupHierarchy]) -> (any CgroupHierarchy)? {
        hierarchies.first { $0.matches(m) }
    }
}
