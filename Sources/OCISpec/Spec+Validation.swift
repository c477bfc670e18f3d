import Foundation

extension Spec {
    /// Decodes and validates config.json at `path`.
    public static func read(path: String) throws -> Spec {
        let spec = try OCIJSON.read(Spec.self, path: path)
        do { try spec.validate() } catch let e as OCISpecError { throw e.inFile(path) }
        return spec
    }

    /// Decodes and validates config.json bytes; errors name `file`.
    public static func decode(_ data: Data, file: String = "config.json") throws -> Spec {
        let spec = try OCIJSON.decode(Spec.self, from: data, file: file)
        do { try spec.validate() } catch let e as OCISpecError { throw e.inFile(file) }
        return spec
    }

    /// The first rule of the runtime-spec (Linux) this configuration breaks, as an error
    /// naming its JSON path.
    public func validate() throws {
        let at = JSONPath.root
        guard Spec.supportedVersion(ociVersion) else {
            throw OCISpecError(path: at.appending("ociVersion"),
                               reason: "\(ociVersion.json.brief) is not a supported version (1.0.x, 1.1.x, 1.2.x)")
        }
        guard let root else { throw OCISpecError(path: at.appending("root"), reason: "missing (required on Linux)") }
        try nonEmpty(root.path, at.appending("root").appending("path"))
        for (i, mount) in (mounts ?? []).enumerated() {
            try nonEmpty(mount.destination, at.appending("mounts").appending(i).appending("destination"))
        }
        if let process { try process.validate(at: at.appending("process")) }
        if let hooks { try hooks.validate(at: at.appending("hooks")) }
        if let linux { try linux.validate(at: at.appending("linux")) }
    }

    /// 1.0.x, 1.1.x and 1.2.x, with or without a pre-release suffix ("1.0.2-dev").
    static func supportedVersion(_ version: String) -> Bool {
        let core = version.split(separator: "-", maxSplits: 1).first.map(String.init) ?? ""
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else { return false }
        return parts[0] == "1" && ["0", "1", "2"].contains(parts[1])
    }
}

func nonEmpty(_ value: String, _ path: JSONPath) throws {
    if value.isEmpty { throw OCISpecError(path: path, reason: "must not be empty") }
}

func absolute(_ value: String, _ path: JSONPath) throws {
    if !value.hasPrefix("/") { throw OCISpecError(path: path, reason: "\(value.json.brief) is not an absolute path") }
}

extension ContainerProcess {
    func validate(at path: JSONPath) throws {
        try absolute(cwd, path.appending("cwd"))
        if let args, args.isEmpty {
            throw OCISpecError(path: path.appending("args"), reason: "at least one entry is required")
        }
        var seen = Set<String>()
        for (i, rlimit) in (rlimits ?? []).enumerated() {
            let at = path.appending("rlimits").appending(i).appending("type")
            guard rlimit.type.hasPrefix("RLIMIT_") else {
                throw OCISpecError(path: at, reason: "\(rlimit.type.json.brief) is not an RLIMIT_* name")
            }
            guard seen.insert(rlimit.type).inserted else {
                throw OCISpecError(path: at, reason: "\(rlimit.type.json.brief) appears twice")
            }
        }
    }
}

extension Hooks {
    func validate(at path: JSONPath) throws {
        for (stage, hooks) in byStage {
            for (i, hook) in hooks.enumerated() {
                let at = path.appending(stage.rawValue).appending(i)
                try absolute(hook.path, at.appending("path"))
                if let timeout = hook.timeout, timeout <= 0 {
                    throw OCISpecError(path: at.appending("timeout"), reason: "\(timeout) must be greater than zero")
                }
            }
        }
    }
}

extension Linux {
    static let propagations = ["shared", "slave", "private", "unbindable"]
    static let clocks = ["monotonic", "boottime"]

    func validate(at path: JSONPath) throws {
        var seen = Set<NamespaceType>()
        for (i, namespace) in (namespaces ?? []).enumerated() where !seen.insert(namespace.type).inserted {
            throw OCISpecError(path: path.appending("namespaces").appending(i).appending("type"),
                               reason: "\(namespace.type.json.brief) appears twice")
        }
        for clock in (timeOffsets ?? [:]).keys.sorted() where !Linux.clocks.contains(clock) {
            throw OCISpecError(path: path.appending("timeOffsets").appending(clock),
                               reason: "\"\(clock)\" is not a clock a time namespace can offset (monotonic, boottime)")
        }
        for (i, device) in (devices ?? []).enumerated() where device.type != .fifo {
            let at = path.appending("devices").appending(i)
            try absolute(device.path, at.appending("path"))
            for (name, value) in [("major", device.major), ("minor", device.minor)] where value == nil {
                throw OCISpecError(path: at.appending(name), reason: "missing (required for type \"\(device.type.rawValue)\")")
            }
        }
        if let propagation = rootfsPropagation, !Linux.propagations.contains(propagation) {
            throw OCISpecError(path: path.appending("rootfsPropagation"),
                               reason: "\(propagation.json.brief) is not a propagation (\(Linux.propagations.joined(separator: ", ")))")
        }
        for (name, paths) in [("maskedPaths", maskedPaths), ("readonlyPaths", readonlyPaths)] {
            for (i, p) in (paths ?? []).enumerated() { try absolute(p, path.appending(name).appending(i)) }
        }
        for (i, rule) in (seccomp?.syscalls ?? []).enumerated() where rule.names.isEmpty {
            throw OCISpecError(path: path.appending("seccomp").appending("syscalls").appending(i).appending("names"),
                               reason: "at least one entry is required")
        }
    }
}
