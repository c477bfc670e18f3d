/// config.json's `process` (named so as not to clash with Foundation.Process).
public struct ContainerProcess: JSONModel {
    public var terminal: Bool?
    public var consoleSize: ConsoleSize?
    public var cwd = ""
    public var env: [String]?
    public var args: [String]?
    public var commandLine: String?
    public var rlimits: [Rlimit]?
    public var apparmorProfile: String?
    public var capabilities: Capabilities?
    public var noNewPrivileges: Bool?
    public var oomScoreAdj: Int?
    public var scheduler: Scheduler?
    public var selinuxLabel: String?
    public var ioPriority: IOPriority?
    public var execCPUAffinity: CPUAffinity?
    public var user = User()
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<ContainerProcess>] {
        [.optional("terminal", \.terminal), .optional("consoleSize", \.consoleSize), .required("cwd", \.cwd),
         .optional("env", \.env), .optional("args", \.args), .optional("commandLine", \.commandLine),
         .optional("rlimits", \.rlimits), .optional("apparmorProfile", \.apparmorProfile),
         .optional("capabilities", \.capabilities), .optional("noNewPrivileges", \.noNewPrivileges),
         .optional("oomScoreAdj", \.oomScoreAdj), .optional("scheduler", \.scheduler),
         .optional("selinuxLabel", \.selinuxLabel), .optional("ioPriority", \.ioPriority),
         .optional("execCPUAffinity", \.execCPUAffinity), .required("user", \.user)]
    }
}

public struct ConsoleSize: JSONModel {
    public var height: UInt32 = 0
    public var width: UInt32 = 0
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<ConsoleSize>] { [.required("height", \.height), .required("width", \.width)] }
}

public struct User: JSONModel {
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var umask: UInt32?
    public var additionalGids: [UInt32]?
    public var username: String?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<User>] {
        [.required("uid", \.uid), .required("gid", \.gid), .optional("umask", \.umask),
         .optional("additionalGids", \.additionalGids), .optional("username", \.username)]
    }
}

/// `type` is an RLIMIT_* name; hard and soft are required.
public struct Rlimit: JSONModel {
    public var type = ""
    public var hard: UInt64 = 0
    public var soft: UInt64 = 0
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<Rlimit>] {
        [.required("type", \.type), .required("hard", \.hard), .required("soft", \.soft)]
    }
}

public struct Capabilities: JSONModel {
    public var effective: [String]?
    public var bounding: [String]?
    public var inheritable: [String]?
    public var permitted: [String]?
    public var ambient: [String]?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<Capabilities>] {
        [.optional("effective", \.effective), .optional("bounding", \.bounding), .optional("inheritable", \.inheritable),
         .optional("permitted", \.permitted), .optional("ambient", \.ambient)]
    }
}

/// sched_setattr(2) parameters (runtime-spec 1.2).
public struct Scheduler: JSONModel {
    public var policy = ""
    public var nice: Int32?
    public var priority: Int32?
    public var flags: [String]?
    public var runtime: UInt64?
    public var deadline: UInt64?
    public var period: UInt64?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<Scheduler>] {
        [.required("policy", \.policy), .optional("nice", \.nice), .optional("priority", \.priority),
         .optional("flags", \.flags), .optional("runtime", \.runtime), .optional("deadline", \.deadline),
         .optional("period", \.period)]
    }
}

public struct IOPriority: JSONModel {
    public var `class` = ""
    public var priority: Int?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<IOPriority>] { [.required("class", \.class), .optional("priority", \.priority)] }
}

public struct CPUAffinity: JSONModel {
    public var initial: String?
    public var final: String?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<CPUAffinity>] { [.optional("initial", \.initial), .optional("final", \.final)] }
}
