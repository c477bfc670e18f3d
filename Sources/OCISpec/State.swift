import Foundation

/// The state a runtime gives its hooks on stdin (runtime.md "State").
public struct State: JSONModel {
    public var ociVersion = ""
    public var id = ""
    public var status = ContainerStatus.creating
    /// Required when created or running; as the hook's pid namespace sees it (crun gives
    /// 0 and runc 1 to createContainer hooks, which run in the container's namespace).
    public var pid: Int32?
    public var bundle = ""
    public var annotations: [String: String]?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<State>] {
        [.required("ociVersion", \.ociVersion), .required("id", \.id), .required("status", \.status),
         .optional("pid", \.pid), .required("bundle", \.bundle), .optional("annotations", \.annotations)]
    }

    /// Decodes and validates state JSON; errors name `file` ("stdin" for a hook).
    public static func decode(_ data: Data, file: String = "state") throws -> State {
        let state = try OCIJSON.decode(State.self, from: data, file: file)
        do { try state.validate() } catch let e as OCISpecError { throw e.inFile(file) }
        return state
    }

    public func validate() throws {
        try nonEmpty(ociVersion, JSONPath.root.appending("ociVersion"))
        try nonEmpty(id, JSONPath.root.appending("id"))
        if (status == .created || status == .running) && pid == nil {
            throw OCISpecError(path: JSONPath.root.appending("pid"), reason: "missing (required when status is \"\(status.rawValue)\")")
        }
        try absolute(bundle, JSONPath.root.appending("bundle"))
    }
}

public enum ContainerStatus: String, JSONStringEnum, Sendable {
    case creating, created, running, stopped
    public static let valueName = "container status"
}
