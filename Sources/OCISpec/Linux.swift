/// config.json's `linux` object.
public struct Linux: JSONModel {
    public var namespaces: [Namespace]?
    public var uidMappings: [IDMapping]?
    public var gidMappings: [IDMapping]?
    /// Keyed by clock: "monotonic", "boottime".
    public var timeOffsets: [String: TimeOffset]?
    public var devices: [Device]?
    public var netDevices: [String: JSONValue]?
    public var cgroupsPath: String?
    public var resources: Resources?
    public var intelRdt: IntelRdt?
    public var memoryPolicy: MemoryPolicy?
    public var sysctl: [String: String]?
    public var seccomp: Seccomp?
    public var rootfsPropagation: String?
    public var maskedPaths: [String]?
    public var readonlyPaths: [String]?
    public var mountLabel: String?
    public var personality: Personality?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<Linux>] {
        [.optional("namespaces", \.namespaces), .optional("uidMappings", \.uidMappings),
         .optional("gidMappings", \.gidMappings), .optional("timeOffsets", \.timeOffsets),
         .optional("devices", \.devices), .optional("netDevices", \.netDevices),
         .optional("cgroupsPath", \.cgroupsPath), .optional("resources", \.resources),
         .optional("intelRdt", \.intelRdt), .optional("memoryPolicy", \.memoryPolicy),
         .optional("sysctl", \.sysctl), .optional("seccomp", \.seccomp),
         .optional("rootfsPropagation", \.rootfsPropagation), .optional("maskedPaths", \.maskedPaths),
         .optional("readonlyPaths", \.readonlyPaths), .optional("mountLabel", \.mountLabel),
         .optional("personality", \.personality)]
    }
}

/// A namespace the container gets: new when `path` is absent, joined when it is set.
public struct Namespace: JSONModel {
    public var type = NamespaceType.pid
    public var path: String?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public init(_ type: NamespaceType, path: String? = nil) {
        self.type = type
        self.path = path
    }
    public static var fields: [JSONField<Namespace>] { [.required("type", \.type), .optional("path", \.path)] }
}

public enum NamespaceType: String, JSONStringEnum, Sendable {
    case pid, network, mount, ipc, uts, user, cgroup, time
    public static let valueName = "namespace type"

    /// The name under /proc/PID/ns/.
    public var procName: String {
        switch self {
        case .network: return "net"
        case .mount: return "mnt"
        default: return rawValue
        }
    }

    /// libcontainer's name in runc's state.json ("NEWPID", "NEWNET", ...).
    public var libcontainerName: String {
        switch self {
        case .pid: return "NEWPID"
        case .network: return "NEWNET"
        case .mount: return "NEWNS"
        case .ipc: return "NEWIPC"
        case .uts: return "NEWUTS"
        case .user: return "NEWUSER"
        case .cgroup: return "NEWCGROUP"
        case .time: return "NEWTIME"
        }
    }

    public init?(libcontainerName: String) {
        guard let type = NamespaceType.allCases.first(where: { $0.libcontainerName == libcontainerName }) else { return nil }
        self = type
    }

    public init?(procName: String) {
        guard let type = NamespaceType.allCases.first(where: { $0.procName == procName }) else { return nil }
        self = type
    }
}

public struct TimeOffset: JSONModel {
    public var secs: Int64?
    public var nanosecs: UInt32?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<TimeOffset>] { [.optional("secs", \.secs), .optional("nanosecs", \.nanosecs)] }
}

/// A device node created in the container.
public struct Device: JSONModel {
    public var type = DeviceType.char
    public var path = ""
    public var major: Int64?
    public var minor: Int64?
    public var fileMode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<Device>] {
        [.required("type", \.type), .required("path", \.path), .optional("major", \.major), .optional("minor", \.minor),
         .optional("fileMode", \.fileMode), .optional("uid", \.uid), .optional("gid", \.gid)]
    }
}

public enum DeviceType: String, JSONStringEnum, Sendable {
    case char = "c", block = "b", unbuffered = "u", fifo = "p"
    public static let valueName = "device type"
}

public struct IntelRdt: JSONModel {
    public var closID: String?
    public var schemata: [String]?
    public var l3CacheSchema: String?
    public var memBwSchema: String?
    public var enableMonitoring: Bool?
    public var enableCMT: Bool?
    public var enableMBM: Bool?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<IntelRdt>] {
        [.optional("closID", \.closID), .optional("schemata", \.schemata), .optional("l3CacheSchema", \.l3CacheSchema),
         .optional("memBwSchema", \.memBwSchema), .optional("enableMonitoring", \.enableMonitoring),
         .optional("enableCMT", \.enableCMT), .optional("enableMBM", \.enableMBM)]
    }
}

/// set_mempolicy(2) for the container process (runtime-spec 1.2).
public struct MemoryPolicy: JSONModel {
    public var mode = ""
    public var nodes: String?
    public var flags: [String]?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<MemoryPolicy>] {
        [.required("mode", \.mode), .optional("nodes", \.nodes), .optional("flags", \.flags)]
    }
}

public struct Personality: JSONModel {
    public var domain = PersonalityDomain.linux
    public var flags: [String]?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<Personality>] { [.required("domain", \.domain), .optional("flags", \.flags)] }
}

public enum PersonalityDomain: String, JSONStringEnum, Sendable {
    case linux = "LINUX", linux32 = "LINUX32"
    public static let valueName = "personality domain"
}
