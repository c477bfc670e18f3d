/// runc's /run/runc/ID/state.json (libcontainer's State): what a checkpoint needs is typed,
/// the rest kept as it is.
public struct RuncState: JSONModel {
    public var id = ""
    public var initProcessPid: Int32 = 0
    /// The init process's start time in clock ticks (field 22 of /proc/PID/stat).
    public var initProcessStart: UInt64 = 0
    public var created: String?
    public var config = LibcontainerConfig()
    public var rootless: Bool?
    /// Controller ("memory", "name=systemd", "" for the v2 hierarchy) → directory.
    public var cgroupPaths: [String: String]?
    /// "NEWPID", "NEWNET", ... → /proc/PID/ns/... path.
    public var namespacePaths: [String: String]?
    /// Where the init's stdin, stdout and stderr pointed at creation.
    public var externalDescriptors: [String]?
    public var intelRdtPath: String?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<RuncState>] {
        [.required("id", \.id), .required("init_process_pid", \.initProcessPid),
         .required("init_process_start", \.initProcessStart), .optional("created", \.created),
         .required("config", \.config), .optional("rootless", \.rootless), .optional("cgroup_paths", \.cgroupPaths),
         .optional("namespace_paths", \.namespacePaths), .optional("external_descriptors", \.externalDescriptors),
         .optional("intel_rdt_path", \.intelRdtPath)]
    }

    /// The bundle from the config's "bundle=..." label.
    public var bundle: String? { config.label("bundle") }
}

/// libcontainer's configs.Config as runc stores it.
public struct LibcontainerConfig: JSONModel {
    public var rootfs = ""
    public var readonlyfs: Bool?
    public var hostname: String?
    public var namespaces: [LibcontainerNamespace]?
    public var cgroups: LibcontainerCgroup?
    public var mounts: [JSONValue]?
    public var maskPaths: [String]?
    public var readonlyPaths: [String]?
    /// "key=value" strings; runc puts "bundle=PATH" here.
    public var labels: [String]?
    public var version: String?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<LibcontainerConfig>] {
        [.required("rootfs", \.rootfs), .optional("readonlyfs", \.readonlyfs), .optional("hostname", \.hostname),
         .optional("namespaces", \.namespaces), .optional("cgroups", \.cgroups), .optional("mounts", \.mounts),
         .optional("mask_paths", \.maskPaths), .optional("readonly_paths", \.readonlyPaths),
         .optional("labels", \.labels), .optional("version", \.version)]
    }

    public func label(_ key: String) -> String? {
        labels?.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }
}

/// A namespace in libcontainer's terms: type "NEWPID"...; an empty path means a new one.
public struct LibcontainerNamespace: JSONModel {
    public var type = ""
    public var path: String?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<LibcontainerNamespace>] { [.required("type", \.type), .optional("path", \.path)] }

    /// The runtime-spec type; nil for a name this model does not know.
    public var namespaceType: NamespaceType? { NamespaceType(libcontainerName: type) }
}

public struct LibcontainerCgroup: JSONModel {
    public var name: String?
    public var path: String?
    public var parent: String?
    public var scopePrefix: String?
    public var paths: [String: String]?
    public var systemd: Bool?
    public var rootless: Bool?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<LibcontainerCgroup>] {
        [.optional("name", \.name), .optional("path", \.path), .optional("parent", \.parent),
         .optional("scope_prefix", \.scopePrefix), .optional("paths", \.paths), .optional("Systemd", \.systemd),
         .optional("Rootless", \.rootless)]
    }
}
