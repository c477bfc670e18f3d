import Foundation

/// An oci-hooks(5) 1.0.0 configuration file (containers/common): which runtime-spec hook
/// to inject at which stages, and when.
public struct OCIHooksFile: JSONModel {
    public var version = ""
    public var hook = Hook()
    public var when = HookConditions()
    /// Runtime-spec stages, or a consumer's extension ("precreate" in podman).
    public var stages: [String] = []
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<OCIHooksFile>] {
        [.required("version", \.version), .required("hook", \.hook), .required("when", \.when),
         .required("stages", \.stages)]
    }

    public static func read(path: String) throws -> OCIHooksFile {
        let file = try OCIJSON.read(OCIHooksFile.self, path: path)
        do { try file.validate() } catch let e as OCISpecError { throw e.inFile(path) }
        return file
    }

    public func validate() throws {
        guard version == "1.0.0" else {
            throw OCISpecError(path: JSONPath.root.appending("version"), reason: "\(version.json.brief) is not 1.0.0")
        }
        try absolute(hook.path, JSONPath.root.appending("hook").appending("path"))
        if stages.isEmpty { throw OCISpecError(path: JSONPath.root.appending("stages"), reason: "at least one entry is required") }
        let known = HookStage.allCases.map(\.rawValue) + OCIHooksFile.extensionStages
        for (i, stage) in stages.enumerated() where !known.contains(stage) {
            throw OCISpecError(path: JSONPath.root.appending("stages").appending(i),
                               reason: "\(stage.json.brief) is not a hook stage (\(known.joined(separator: ", ")))")
        }
        if when.always != true && when.annotations == nil && when.commands == nil && when.hasBindMounts != true {
            throw OCISpecError(path: JSONPath.root.appending("when"), reason: "sets no condition")
        }
    }

    /// Stages of consumers beyond the runtime-spec that oci-hooks(5) files may name.
    public static let extensionStages = ["precreate"]

    /// `hooks` with this file's hook appended at each of its runtime-spec stages.
    public func applied(to hooks: Hooks?) -> Hooks {
        var result = hooks ?? Hooks()
        for stage in stages.compactMap(HookStage.init(rawValue:)) {
            let keyPath: WritableKeyPath<Hooks, [Hook]?>
            switch stage {
            case .prestart: keyPath = \.prestart
            case .createRuntime: keyPath = \.createRuntime
            case .createContainer: keyPath = \.createContainer
            case .startContainer: keyPath = \.startContainer
            case .poststart: keyPath = \.poststart
            case .poststop: keyPath = \.poststop
            }
            result[keyPath: keyPath] = (result[keyPath: keyPath] ?? []) + [hook]
        }
        return result
    }
}

/// `when`: every condition that is set must match.
public struct HookConditions: JSONModel {
    public var always: Bool?
    /// Regular expressions: annotation key → value.
    public var annotations: [String: String]?
    /// Regular expressions matched against process.args[0].
    public var commands: [String]?
    public var hasBindMounts: Bool?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<HookConditions>] {
        [.optional("always", \.always), .optional("annotations", \.annotations), .optional("commands", \.commands),
         .optional("hasBindMounts", \.hasBindMounts)]
    }
}
