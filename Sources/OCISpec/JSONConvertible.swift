/// A value read from and written to a `JSONValue`; errors carry the JSON path.
public protocol JSONConvertible {
    init(json: JSONValue, at path: JSONPath) throws
    var json: JSONValue { get }
}

func mismatch(_ expected: String, _ found: JSONValue, _ path: JSONPath) -> OCISpecError {
    OCISpecError(path: path, reason: "expected \(expected), found \(found.brief)")
}

extension JSONValue: JSONConvertible {
    public init(json: JSONValue, at path: JSONPath) { self = json }
    public var json: JSONValue { self }
}

extension String: JSONConvertible {
    public init(json: JSONValue, at path: JSONPath) throws {
        guard case .string(let s) = json else { throw mismatch("a string", json, path) }
        self = s
    }
    public var json: JSONValue { .string(self) }
}

extension Bool: JSONConvertible {
    public init(json: JSONValue, at path: JSONPath) throws {
        guard case .bool(let b) = json else { throw mismatch("a boolean", json, path) }
        self = b
    }
    public var json: JSONValue { .bool(self) }
}

extension Double: JSONConvertible {
    public init(json: JSONValue, at path: JSONPath) throws {
        switch json {
        case .double(let d): self = d
        case .int(let i): self = Double(i)
        case .uint(let u): self = Double(u)
        default: throw mismatch("a number", json, path)
        }
    }
    public var json: JSONValue { .double(self) }
}

/// Integers of every width, range-checked: `-1 is out of range for UInt32`.
public protocol JSONInteger: FixedWidthInteger, JSONConvertible {}

extension JSONInteger {
    public init(json: JSONValue, at path: JSONPath) throws {
        let value: Self?
        switch json {
        case .int(let i): value = Self(exactly: i)
        case .uint(let u): value = Self(exactly: u)
        case .double(let d) where d.rounded() == d: value = Self(exactly: d)
        default: throw mismatch("an integer", json, path)
        }
        guard let value else {
            throw OCISpecError(path: path, reason: "\(json.brief) is out of range for \(Self.self) (\(Self.min)...\(Self.max))")
        }
        self = value
    }
    public var json: JSONValue {
        if let i = Int64(exactly: self) { return .int(i) }
        return .uint(UInt64(self))
    }
}

extension Int: JSONInteger {}
extension Int32: JSONInteger {}
extension Int64: JSONInteger {}
extension UInt16: JSONInteger {}
extension UInt32: JSONInteger {}
extension UInt64: JSONInteger {}

extension Array: JSONConvertible where Element: JSONConvertible {
    public init(json: JSONValue, at path: JSONPath) throws {
        guard case .array(let items) = json else { throw mismatch("an array", json, path) }
        self = try items.enumerated().map { try Element(json: $0.element, at: path.appending($0.offset)) }
    }
    public var json: JSONValue { .array(map(\.json)) }
}

extension Dictionary: JSONConvertible where Key == String, Value: JSONConvertible {
    public init(json: JSONValue, at path: JSONPath) throws {
        guard case .object(let members) = json else { throw mismatch("an object", json, path) }
        self = try members.reduce(into: [:]) { $0[$1.key] = try Value(json: $1.value, at: path.appending($1.key)) }
    }
    public var json: JSONValue { .object(mapValues(\.json)) }
}

/// A closed set of strings: `"foo" is not a namespace type (pid, network, ...)`.
public protocol JSONStringEnum: RawRepresentable, CaseIterable, JSONConvertible, Codable where RawValue == String {
    /// What the value names, for the error message: "namespace type".
    static var valueName: String { get }
}

extension JSONStringEnum {
    public init(json: JSONValue, at path: JSONPath) throws {
        let raw = try String(json: json, at: path)
        guard let value = Self(rawValue: raw) else {
            let known = Self.allCases.map(\.rawValue).joined(separator: ", ")
            throw OCISpecError(path: path, reason: "\(json.brief) is not a \(Self.valueName) (\(known))")
        }
        self = value
    }
    public var json: JSONValue { .string(rawValue) }
}
