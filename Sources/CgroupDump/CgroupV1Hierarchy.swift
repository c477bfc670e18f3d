import Foundation
import LinuxKernel

/// A cgroup v1 hierarchy: one or more co-mounted controllers, or a named hierarchy.
public struct CgroupV1Hierarchy: CgroupHierarchy {
    public let mountPoint: String
    public let controllerNames: [String]

    public init(mountPoint: String, controllerNames: [String]) {
        self.mountPoint = mountPoint
        self.controllerNames = controllerNames
    }

    /// The settings CRIU dumps per controller (criu/cgroup-props.c), in restore order:
    /// memory.limit_in_bytes before memory.memsw.limit_in_bytes, cpu period before quota.
    static let settings: [String: [String]] = [
        "cpu": ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.rt_period_us", "cpu.rt_runtime_us"],
        "memory": ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.swappiness",
                   "memory.soft_limit_in_bytes", "memory.move_charge_at_immigrate", "memory.oom_control",
                   "memory.use_hierarchy", "memory.kmem.limit_in_bytes", "memory.kmem.tcp.limit_in_bytes"],
        "cpuset": ["cpuset.cpus", "cpuset.mems", "cpuset.memory_migrate", "cpuset.cpu_exclusive",
                   "cpuset.mem_exclusive", "cpuset.mem_hardwall", "cpuset.memory_spread_page",
                   "cpuset.memory_spread_slab", "cpuset.sched_load_balance", "cpuset.sched_relax_domain_level"],
        "blkio": ["blkio.weight"],
        "net_cls": ["net_cls.classid"],
        "net_prio": ["net_prio.ifpriomap"],
        "pids": ["pids.max"],
        "devices": ["devices.list"],
    ]
    /// Every hierarchy's own files; cgroup.procs and tasks only for their permissions.
    static let global = ["cgroup.clone_children", "notify_on_release", "cgroup.procs", "tasks"]
    /// Written at creation (criu/cgroup.c special_props): later writes can fail once
    /// tasks or children are in the cgroup.
    static let early: Set<String> = ["cpuset.cpus", "cpuset.mems", "devices.list", "memory.kmem.limit_in_bytes",
                                     "memory.swappiness", "memory.oom_control", "memory.use_hierarchy"]

    public func propertyNames(inDirectory path: String) -> [String] {
        let names = controllerNames.flatMap { Self.settings[$0] ?? [] } + Self.global
        return names.filter { CgroupFile.exists(path + "/" + $0) }
    }

    public func isEarlyProperty(_ name: String) -> Bool { Self.early.contains(name) }

    public func recordedValue(_ name: String, raw: String) -> String {
        if name == "cgroup.procs" || name == "tasks" { return "" }
        if name == "memory.oom_control" {
            // "oom_kill_disable 0\nunder_oom 0\n..." -> "0"
            for line in raw.split(separator: "\n") {
                let f = line.split(separator: " ")
                if f.count == 2, f[0] == "oom_kill_disable" { return String(f[1]) }
            }
        }
        return CgroupFile.unlimitedAsMinusOne(raw)
    }

    public func restore(property name: String, value: String, inDirectory path: String, log: Log) throws {
        if name == "cgroup.procs" || name == "tasks" { return }
        let file = path + "/" + name
        if let current = try? CgroupFile.read(file), recordedValue(name, raw: current) == value { return }
        switch name {
        case "devices.list":
            // Only the allow list can be read: deny everything, then allow it line by line
            // (the kernel parses one rule per write).
            try writeFile(path + "/devices.deny", "a")
            for rule in value.split(separator: "\n") where !rule.isEmpty {
                try writeFile(path + "/devices.allow", String(rule))
            }
        case "net_prio.ifpriomap":
            // One interface per write; interfaces with priority 0 are the default.
            for line in value.split(separator: "\n") {
                let f = line.split(separator: " ")
                if f.count == 2, f[1] != "0" { try writeSoft(file, String(line), log: log) }
            }
        default:
            try writeSoft(file, value, log: log)
        }
    }

    /// Knobs the kernel deprecated (memory.kmem.limit_in_bytes) read fine and refuse writes
    /// with EOPNOTSUPP: warn and go on, as CRIU does, so images of older kernels restore.
    private func writeSoft(_ file: String, _ value: String, log: Log) throws {
        do { try writeFile(file, value) } catch let e as CheckpointError where e.errno == .EOPNOTSUPP {
            log.warn("\(e.message): deprecated setting, skipped")
        }
    }

    /// A new cpuset starts with empty cpus and mems: take the parent's, as CRIU does,
    /// until the recorded values are written.
    public func initialize(newDirectory path: String) throws {
        guard controllerNames.contains("cpuset") else { return }
        let parent = (path as NSString).deletingLastPathComponent
        for name in ["cpuset.cpus", "cpuset.mems"] {
            let current = (try? CgroupFile.read(path + "/" + name)) ?? ""
            guard current.isEmpty else { continue }
            let inherited = try CgroupFile.read(parent + "/" + name)
            if !inherited.isEmpty { try writeFile(path + "/" + name, inherited) }
        }
    }

    public func move(pid: Int32, toDirectory path: String) throws {
        try writeFile(path + "/cgroup.procs", "\(pid)")
    }

    public func moveThread(tid: Int32, toDirectory path: String) throws {
        try writeFile(path + "/tasks", "\(tid)")
    }
}
