/// Where a value sits in a JSON document: `linux.namespaces[2].type`.
public struct JSONPath: Equatable, Sendable, CustomStringConvertible {
    public enum Step: Equatable, Sendable {
        case key(String)
        case index(Int)
    }
    public var steps: [Step]

    public init(_ steps: [Step] = []) { self.steps = steps }
    public static let root = JSONPath()

    public func appending(_ key: String) -> JSONPath { JSONPath(steps + [.key(key)]) }
    public func appending(_ index: Int) -> JSONPath { JSONPath(steps + [.index(index)]) }

    public var description: String {
        var text = ""
        for step in steps {
            switch step {
            case .key(let k): text += text.isEmpty ? k : "." + k
            case .index(let i): text += "[\(i)]"
            }
        }
        return text
    }
}

/// A file that does not decode or breaks a rule of the runtime-spec, in one line:
/// `config.json: linux.namespaces[2].type: "foo" is not a namespace type (...)`.
public struct OCISpecError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file's name as the caller gave it; empty when decoding bytes of no file.
    public var file: String
    public var path: JSONPath
    public var reason: String

    public init(file: String = "", path: JSONPath, reason: String) {
        self.file = file
        self.path = path
        self.reason = reason
    }

    public func inFile(_ name: String) -> OCISpecError {
        var e = self
        e.file = name
        return e
    }

    public var description: String {
        let location = path.steps.isEmpty ? "" : "\(path): "
        return (file.isEmpty ? "" : "\(file): ") + location + reason
    }
}
