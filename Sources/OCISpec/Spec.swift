/// The runtime-spec's config.json (versions 1.0 to 1.2), Linux parts.
public struct Spec: JSONModel {
    public var ociVersion = ""
    public var root: Root?
    public var mounts: [Mount]?
    public var process: ContainerProcess?
    public var hostname: String?
    public var domainname: String?
    public var annotations: [String: String]?
    public var hooks: Hooks?
    public var linux: Linux?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<Spec>] {
        [.required("ociVersion", \.ociVersion), .optional("root", \.root), .optional("mounts", \.mounts),
         .optional("process", \.process), .optional("hostname", \.hostname), .optional("domainname", \.domainname),
         .optional("annotations", \.annotations), .optional("hooks", \.hooks), .optional("linux", \.linux)]
    }
}

public struct Root: JSONModel {
    public var path = ""
    public var readonly: Bool?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public init(path: String, readonly: Bool? = nil) {
        self.path = path
        self.readonly = readonly
    }
    public static var fields: [JSONField<Root>] { [.required("path", \.path), .optional("readonly", \.readonly)] }
}

public struct Mount: JSONModel {
    public var destination = ""
    public var source: String?
    public var options: [String]?
    public var type: String?
    public var uidMappings: [IDMapping]?
    public var gidMappings: [IDMapping]?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<Mount>] {
        [.required("destination", \.destination), .optional("source", \.source), .optional("options", \.options),
         .optional("type", \.type), .optional("uidMappings", \.uidMappings), .optional("gidMappings", \.gidMappings)]
    }
}

/// A user or group id range: `size` ids from `containerID` map to `hostID` on.
public struct IDMapping: JSONModel {
    public var containerID: UInt32 = 0
    public var hostID: UInt32 = 0
    public var size: UInt32 = 0
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<IDMapping>] {
        [.required("containerID", \.containerID), .required("hostID", \.hostID), .required("size", \.size)]
    }
}

/// Hooks by lifecycle stage; `prestart` is deprecated but still run by runc and crun.
public struct Hooks: JSONModel {
    public var prestart: [Hook]?
    public var createRuntime: [Hook]?
    public var createContainer: [Hook]?
    public var startContainer: [Hook]?
    public var poststart: [Hook]?
    public var poststop: [Hook]?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<Hooks>] {
        [.optional("prestart", \.prestart), .optional("createRuntime", \.createRuntime),
         .optional("createContainer", \.createContainer), .optional("startContainer", \.startContainer),
         .optional("poststart", \.poststart), .optional("poststop", \.poststop)]
    }

    /// Every stage with its hooks, in lifecycle order.
    public var byStage: [(stage: HookStage, hooks: [Hook])] {
        let all: [(HookStage, [Hook]?)] = [(.prestart, prestart), (.createRuntime, createRuntime),
                                            (.createContainer, createContainer), (.startContainer, startContainer),
                                            (.poststart, poststart), (.poststop, poststop)]
        return all.compactMap { stage, hooks in hooks.map { (stage, $0) } }
    }
}

public enum HookStage: String, JSONStringEnum {
    case prestart, createRuntime, createContainer, startContainer, poststart, poststop
    public static let valueName = "hook stage"
}

/// One hook: an absolute `path`, its argv (`args[0]` included), environment and a timeout
/// in seconds.
public struct Hook: JSONModel {
    public var path = ""
    public var args: [String]?
    public var env: [String]?
    public var timeout: Int?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public init(path: String, args: [String]? = nil, env: [String]? = nil, timeout: Int? = nil) {
        self.path = path
        self.args = args
        self.env = env
        self.timeout = timeout
    }
    public static var fields: [JSONField<Hook>] {
        [.required("path", \.path), .optional("args", \.args), .optional("env", \.env), .optional("timeout", \.timeout)]
    }
}
