import Foundation
import OCISpec
import ProcFS

/// A container's init process as /proc shows it now.
public struct InitProcess: Equatable, Sendable {
    public let pid: Int32
    public let startTime: UInt64

    /// Reads /proc/PID/stat; nil when the process is gone (or a zombie: it no longer runs
    /// the container).
    public init?(pid: Int32) {
        guard pid > 0, let stat = try? TaskStat.read(pid: pid), stat.state != "Z", stat.state != "X" else { return nil }
        self.pid = pid
        self.startTime = stat.startTime
    }

    /// The process at `pid` still is the one that started at `startTime` (nil: any).
    public static func alive(pid: Int32, startTime: UInt64?) -> Bool {
        guard let process = InitProcess(pid: pid) else { return false }
        return startTime.map { $0 == process.startTime } ?? true
    }

    /// /proc/PID/ns/* by runtime-spec type, for each namespace the kernel offers.
    public var namespacePaths: [String: String] {
        var paths: [String: String] = [:]
        for type in NamespaceType.allCases {
            let path = "/proc/\(pid)/ns/\(type.procName)"
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil { paths[type.rawValue] = path }
        }
        return paths
    }

    /// Controller → absolute directory, from /proc/PID/cgroup and our cgroup mounts.
    /// Hierarchies where the process sits in the root cgroup are left out: the runtime
    /// made no cgroup there (crun here leaves the cgroup2 hierarchy alone).
    public func cgroupPaths(mountInfo: String = "/proc/self/mountinfo") throws -> [String: String] {
        let membership = try CgroupMembership.read(pid: pid)
        let mounts = CgroupMounts((try? MountInfoEntry.read(path: mountInfo)) ?? [])
        var paths: [String: String] = [:]
        for m in membership where m.path != "/" {
            for controller in m.controllers.isEmpty ? [""] : m.controllers {
                if let dir = mounts.directory(controller: controller, path: m.path) { paths[controller] = dir }
            }
        }
        return paths
    }
}

/// Where each cgroup hierarchy is mounted, from mountinfo (the first mount of each wins).
struct CgroupMounts {
    /// Controller ("" for cgroup2) → (mount point, root of the hierarchy that is mounted).
    private var mounts: [String: (point: String, root: String)] = [:]

    init(_ mountInfo: [MountInfoEntry]) {
        let known: Set<String> = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio",
                                  "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"]
        for mount in mountInfo {
            switch mount.fsType {
            case "cgroup2":
                if mounts[""] == nil { mounts[""] = (mount.mountPoint, mount.root) }
            case "cgroup":
                for option in mount.superOptionList where known.contains(option) || option.hasPrefix("name=") {
                    if mounts[option] == nil { mounts[option] = (mount.mountPoint, mount.root) }
                }
            default: continue
            }
        }
    }

    func directory(controller: String, path: String) -> String? {
        guard let mount = mounts[controller] else { return nil }
        var relative = path
        if mount.root != "/" {
            guard path == mount.root || path.hasPrefix(mount.root + "/") else { return nil }
            relative = String(path.dropFirst(mount.root.count))
        }
        return relative == "/" || relative.isEmpty ? mount.point : mount.point + relative
    }
}
