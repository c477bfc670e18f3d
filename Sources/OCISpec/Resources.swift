/// `linux.resources`: cgroup limits.
public struct Resources: JSONModel {
    public var devices: [DeviceRule]?
    public var memory: MemoryLimits?
    public var cpu: CPULimits?
    public var blockIO: BlockIO?
    public var hugepageLimits: [HugepageLimit]?
    public var network: NetworkLimits?
    public var pids: PidsLimit?
    /// Keyed by RDMA device name.
    public var rdma: [String: RdmaLimit]?
    /// cgroup v2 files and values.
    public var unified: [String: String]?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<Resources>] {
        [.optional("devices", \.devices), .optional("memory", \.memory), .optional("cpu", \.cpu),
         .optional("blockIO", \.blockIO), .optional("hugepageLimits", \.hugepageLimits),
         .optional("network", \.network), .optional("pids", \.pids), .optional("rdma", \.rdma),
         .optional("unified", \.unified)]
    }
}

/// A device cgroup rule: allow or deny `access` (r, w, m) to type/major/minor.
public struct DeviceRule: JSONModel {
    public var allow = false
    public var type: String?
    public var major: Int64?
    public var minor: Int64?
    public var access: String?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<DeviceRule>] {
        [.required("allow", \.allow), .optional("type", \.type), .optional("major", \.major),
         .optional("minor", \.minor), .optional("access", \.access)]
    }
}

public struct MemoryLimits: JSONModel {
    public var limit: Int64?
    public var reservation: Int64?
    public var swap: Int64?
    public var kernel: Int64?
    public var kernelTCP: Int64?
    public var swappiness: UInt64?
    public var disableOOMKiller: Bool?
    public var useHierarchy: Bool?
    public var checkBeforeUpdate: Bool?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<MemoryLimits>] {
        [.optional("limit", \.limit), .optional("reservation", \.reservation), .optional("swap", \.swap),
         .optional("kernel", \.kernel), .optional("kernelTCP", \.kernelTCP), .optional("swappiness", \.swappiness),
         .optional("disableOOMKiller", \.disableOOMKiller), .optional("useHierarchy", \.useHierarchy),
         .optional("checkBeforeUpdate", \.checkBeforeUpdate)]
    }
}

public struct CPULimits: JSONModel {
    public var shares: UInt64?
    public var quota: Int64?
    public var burst: UInt64?
    public var period: UInt64?
    public var realtimeRuntime: Int64?
    public var realtimePeriod: UInt64?
    public var cpus: String?
    public var mems: String?
    public var idle: Int64?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<CPULimits>] {
        [.optional("shares", \.shares), .optional("quota", \.quota), .optional("burst", \.burst),
         .optional("period", \.period), .optional("realtimeRuntime", \.realtimeRuntime),
         .optional("realtimePeriod", \.realtimePeriod), .optional("cpus", \.cpus), .optional("mems", \.mems),
         .optional("idle", \.idle)]
    }
}

public struct BlockIO: JSONModel {
    public var weight: UInt16?
    public var leafWeight: UInt16?
    public var weightDevice: [WeightDevice]?
    public var throttleReadBpsDevice: [ThrottleDevice]?
    public var throttleWriteBpsDevice: [ThrottleDevice]?
    public var throttleReadIOPSDevice: [ThrottleDevice]?
    public var throttleWriteIOPSDevice: [ThrottleDevice]?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<BlockIO>] {
        [.optional("weight", \.weight), .optional("leafWeight", \.leafWeight), .optional("weightDevice", \.weightDevice),
         .optional("throttleReadBpsDevice", \.throttleReadBpsDevice),
         .optional("throttleWriteBpsDevice", \.throttleWriteBpsDevice),
         .optional("throttleReadIOPSDevice", \.throttleReadIOPSDevice),
         .optional("throttleWriteIOPSDevice", \.throttleWriteIOPSDevice)]
    }
}

public struct WeightDevice: JSONModel {
    public var major: Int64 = 0
    public var minor: Int64 = 0
    public var weight: UInt16?
    public var leafWeight: UInt16?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<WeightDevice>] {
        [.required("major", \.major), .required("minor", \.minor), .optional("weight", \.weight),
         .optional("leafWeight", \.leafWeight)]
    }
}

public struct ThrottleDevice: JSONModel {
    public var major: Int64 = 0
    public var minor: Int64 = 0
    public var rate: UInt64 = 0
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<ThrottleDevice>] {
        [.required("major", \.major), .required("minor", \.minor), .required("rate", \.rate)]
    }
}

public struct HugepageLimit: JSONModel {
    public var pageSize = ""
    public var limit: UInt64 = 0
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<HugepageLimit>] { [.required("pageSize", \.pageSize), .required("limit", \.limit)] }
}

public struct NetworkLimits: JSONModel {
    public var classID: UInt32?
    public var priorities: [InterfacePriority]?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<NetworkLimits>] {
        [.optional("classID", \.classID), .optional("priorities", \.priorities)]
    }
}

public struct InterfacePriority: JSONModel {
    public var name = ""
    public var priority: UInt32 = 0
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<InterfacePriority>] { [.required("name", \.name), .required("priority", \.priority)] }
}

public struct PidsLimit: JSONModel {
    public var limit: Int64 = 0
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<PidsLimit>] { [.required("limit", \.limit)] }
}

public struct RdmaLimit: JSONModel {
    public var hcaHandles: UInt32?
    public var hcaObjects: UInt32?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<RdmaLimit>] {
        [.optional("hcaHandles", \.hcaHandles), .optional("hcaObjects", \.hcaObjects)]
    }
}
