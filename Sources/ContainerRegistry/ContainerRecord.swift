import OCISpec

/// What a checkpoint needs to know about one container, whichever way it was found.
public struct ContainerRecord: Codable, Equatable, Sendable {
    public enum Source: String, Codable, Sendable {
        /// runc's state directory (`--root`, default /run/runc).
        case runc
        /// crun's state directory (/run/crun).
        case crun
        /// The hook registry, for containers of any runtime.
        case registry
    }

    public var id: String
    /// The runtime that runs the container ("runc", "crun", or what the hook saw).
    public var runtime: String
    public var source: Source
    /// The container's init process, in our pid namespace.
    public var pid: Int32
    /// The init's start time in clock ticks (/proc/PID/stat field 22): a pid reused by
    /// another process has another start time.
    public var pidStartTime: UInt64?
    public var bundle: String
    public var rootfs: String
    /// Controller ("memory", "name=systemd"; "" for cgroup v2) → absolute directory.
    public var cgroupPaths: [String: String]
    /// Runtime-spec namespace type ("pid", "network", ...) → /proc/PID/ns/... path.
    public var namespacePaths: [String: String]
    /// From runc and crun: created, running, or stopped when the init is gone. From the
    /// registry: what the hook saw (creating or created at createRuntime); an entry is only
    /// returned while its init lives.
    public var status: ContainerStatus
    /// RFC 3339 creation time as the runtime or hook wrote it.
    public var created: String?
    public var annotations: [String: String]

    public init(id: String, runtime: String, source: Source, pid: Int32, pidStartTime: UInt64?, bundle: String,
                rootfs: String, cgroupPaths: [String: String], namespacePaths: [String: String],
                status: ContainerStatus, created: String?, annotations: [String: String]) {
        self.id = id
        self.runtime = runtime
        self.source = source
        self.pid = pid
        self.pidStartTime = pidStartTime
        self.bundle = bundle
        self.rootfs = rootfs
        self.cgroupPaths = cgroupPaths
        self.namespacePaths = namespacePaths
        self.status = status
        self.created = created
        self.annotations = annotations
    }

    /// The freezer cgroup directory (cgroup v1), or the v2 directory whose cgroup.freeze
    /// freezes the container.
    public var freezerPath: String? { cgroupPaths["freezer"] ?? cgroupPaths[""] }

    public func namespacePath(_ type: NamespaceType) -> String? { namespacePaths[type.rawValue] }
}

/// A container that cannot be found or whose state cannot be read, in one line.
public struct ContainerRegistryError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Container ids become file names: runc's rule (letters, digits, `_+-.`, no "." or "..").
func checkContainerID(_ id: String) throws {
    let allowed = id.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || "_+-.".unicodeScalars.contains($0) }
    guard !id.isEmpty, allowed, id != ".", id != ".." else {
        throw ContainerRegistryError("container id \"\(id)\" is not valid (letters, digits, _ + - . only)")
    }
}
