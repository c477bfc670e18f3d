/// One line of /proc/PID/cgroup: "4:memory:/x", "2:cpu,cpuacct:/", "1:name=systemd:/",
/// or the v2 unified "0::/x".
public struct CgroupMembership: Equatable, Sendable {
    public let hierarchyID: Int
    /// Controllers of a v1 hierarchy ("name=systemd" for a named one); empty for v2.
    public let controllers: [String]
    /// Relative to the hierarchy's root as seen from the reader's cgroup namespace.
    public let path: String

    public init(hierarchyID: Int, controllers: [String], path: String) {
        self.hierarchyID = hierarchyID
        self.controllers = controllers
        self.path = path
    }

    public var isUnified: Bool { hierarchyID == 0 && controllers.isEmpty }

    /// The name of a named v1 hierarchy ("systemd" for "name=systemd").
    public var name: String? {
        controllers.first { $0.hasPrefix("name=") }.map { String($0.dropFirst("name=".count)) }
    }

    public static func read(pid: Int32) throws -> [CgroupMembership] {
        let path = procPath(pid, "cgroup")
        do {
            return try parse(try readProcFile(path))
        } catch let error as ProcFSError where error.path == "cgroup" {
            throw ProcFSError(path: path, reason: error.reason)
        }
    }

    public static func parse(_ text: String) throws -> [CgroupMembership] {
        try text.split(separator: "\n", omittingEmptySubsequences: true).map { line in
            // the path is last and may itself contain ":"
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, let id = Int(parts[0]) else {
                throw ProcFSError(path: "cgroup", reason: "bad line: \(line)")
            }
            let controllers = parts[1].split(separator: ",").map(String.init)
            return CgroupMembership(hierarchyID: id, controllers: controllers, path: String(parts[2]))
        }
    }
}
