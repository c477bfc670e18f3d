import Foundation
import LinuxKernel

/// The cgroup v2 unified hierarchy.
public struct CgroupV2Hierarchy: CgroupHierarchy {
    public let mountPoint: String
    public var controllerNames: [String] { [""] }

    public init(mountPoint: String) { self.mountPoint = mountPoint }

    /// Settings in restore order. cgroup.type and subtree_control come first: a child's
    /// controller files exist only once its parent enables the controller.
    static let settings = [
        "cgroup.type", "cgroup.subtree_control", "cgroup.max.depth", "cgroup.max.descendants",
        "cpuset.cpus", "cpuset.mems", "cpu.weight", "cpu.max", "cpu.idle",
        "memory.min", "memory.low", "memory.high", "memory.max", "memory.swap.high", "memory.swap.max",
        "memory.oom.group", "pids.max", "io.weight", "io.max",
    ]
    static let early: Set<String> = ["cgroup.type", "cgroup.subtree_control", "cpuset.cpus", "cpuset.mems"]

    public func propertyNames(inDirectory path: String) -> [String] {
        var names = Self.settings.filter { CgroupFile.exists(path + "/" + $0) }
        // hugetlb.<size>.max, one per huge page size
        let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        names += files.filter { $0.hasPrefix("hugetlb.") && $0.hasSuffix(".max") && !$0.hasSuffix(".rsvd.max") }.sorted()
        return names + ["cgroup.procs"]
    }

    public func isEarlyProperty(_ name: String) -> Bool { Self.early.contains(name) }

    public func recordedValue(_ name: String, raw: String) -> String {
        if name == "cgroup.procs" { return "" }
        return CgroupFile.unlimitedAsMinusOne(raw)
    }

    public func restore(property name: String, value: String, inDirectory path: String, log: Log) throws {
        if name == "cgroup.procs" { return }
        let file = path + "/" + name
        if let current = try? CgroupFile.read(file), recordedValue(name, raw: current) == value { return }
        switch name {
        case "cgroup.subtree_control":
            // reads "cpu memory", takes "+cpu +memory"; disable what the dump did not have
            let wanted = Set(value.split(separator: " ").map(String.init))
            let current = Set(((try? CgroupFile.read(file)) ?? "").split(separator: " ").map(String.init))
            let change = wanted.subtracting(current).sorted().map { "+" + $0 } + current.subtracting(wanted).sorted().map { "-" + $0 }
            if !change.isEmpty { try writeFile(file, change.joined(separator: " ")) }
        case "cgroup.type":
            // only "threaded" can be written; "domain" is what a new cgroup already is
            if value == "threaded" { try writeFile(file, value) }
        default:
            guard CgroupFile.exists(file) else {
                throw CheckpointError(.notFound, "\(file): no such setting here; enable its controller in the parent's cgroup.subtree_control")
            }
            try writeFile(file, value == "-1" ? "max" : value)
        }
    }

    public func initialize(newDirectory path: String) throws {}

    public func move(pid: Int32, toDirectory path: String) throws {
        try writeFile(path + "/cgroup.procs", "\(pid)")
    }

    public func moveThread(tid: Int32, toDirectory path: String) throws {
        try writeFile(path + "/cgroup.threads", "\(tid)")
    }
}
