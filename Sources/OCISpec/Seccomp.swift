/// `linux.seccomp`: a filter built by the runtime.
public struct Seccomp: JSONModel {
    public var defaultAction = SeccompAction.allow
    public var defaultErrnoRet: UInt32?
    public var architectures: [String]?
    public var flags: [String]?
    public var listenerPath: String?
    public var listenerMetadata: String?
    public var syscalls: [SeccompRule]?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<Seccomp>] {
        [.required("defaultAction", \.defaultAction), .optional("defaultErrnoRet", \.defaultErrnoRet),
         .optional("architectures", \.architectures), .optional("flags", \.flags),
         .optional("listenerPath", \.listenerPath), .optional("listenerMetadata", \.listenerMetadata),
         .optional("syscalls", \.syscalls)]
    }
}

public struct SeccompRule: JSONModel {
    public var names: [String] = []
    public var action = SeccompAction.allow
    public var errnoRet: UInt32?
    public var args: [SeccompArg]?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<SeccompRule>] {
        [.required("names", \.names), .required("action", \.action), .optional("errnoRet", \.errnoRet),
         .optional("args", \.args)]
    }
}

public struct SeccompArg: JSONModel {
    public var index: UInt32 = 0
    public var value: UInt64 = 0
    public var valueTwo: UInt64?
    public var op = SeccompOperator.equal
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<SeccompArg>] {
        [.required("index", \.index), .required("value", \.value), .optional("valueTwo", \.valueTwo),
         .required("op", \.op)]
    }
}

public enum SeccompAction: String, JSONStringEnum, Sendable {
    case kill = "SCMP_ACT_KILL", killProcess = "SCMP_ACT_KILL_PROCESS", killThread = "SCMP_ACT_KILL_THREAD"
    case trap = "SCMP_ACT_TRAP", errno = "SCMP_ACT_ERRNO", trace = "SCMP_ACT_TRACE"
    case allow = "SCMP_ACT_ALLOW", log = "SCMP_ACT_LOG", notify = "SCMP_ACT_NOTIFY"
    public static let valueName = "seccomp action"
}

public enum SeccompOperator: String, JSONStringEnum, Sendable {
    case notEqual = "SCMP_CMP_NE", less = "SCMP_CMP_LT", lessOrEqual = "SCMP_CMP_LE", equal = "SCMP_CMP_EQ"
    case greaterOrEqual = "SCMP_CMP_GE", greater = "SCMP_CMP_GT", maskedEqual = "SCMP_CMP_MASKED_EQ"
    public static let valueName = "seccomp operator"
}
