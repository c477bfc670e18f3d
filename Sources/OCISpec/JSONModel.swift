import Foundation

/// A JSON object with named fields. Fields the model does not name are kept in
/// `unknownFields` and written back, so a file from a newer runtime survives a re-encode.
/// Codable through `JSONValue`: a model inside any Codable type decodes the same way.
public protocol JSONModel: JSONConvertible, Codable, Equatable {
    init()
    static var fields: [JSONField<Self>] { get }
    var unknownFields: [String: JSONValue] { get set }
}

extension JSONModel {
    public init(json: JSONValue, at path: JSONPath) throws {
        guard case .object(var members) = json else { throw mismatch("an object", json, path) }
        self.init()
        for field in Self.fields {
            try field.read(&self, members[field.name], path.appending(field.name))
            members[field.name] = nil
        }
        unknownFields = members
    }

    public var json: JSONValue {
        var members = unknownFields
        for field in Self.fields {
            if let value = field.write(self) { members[field.name] = value }
        }
        return .object(members)
    }

    public init(from decoder: Decoder) throws {
        let path = JSONPath(decoder.codingPath.map { key in key.intValue.map { .index($0) } ?? .key(key.stringValue) })
        try self.init(json: try JSONValue(from: decoder), at: path)
    }

    public func encode(to encoder: Encoder) throws {
        try json.encode(to: encoder)
    }
}

/// One named field of a model and the key path it lives at.
public struct JSONField<Model> {
    public let name: String
    let read: (inout Model, JSONValue?, JSONPath) throws -> Void
    let write: (Model) -> JSONValue?

    /// Absent or null reads as nil; nil is not written.
    public static func optional<T: JSONConvertible>(_ name: String, _ keyPath: WritableKeyPath<Model, T?>) -> JSONField {
        JSONField(name: name, read: { model, value, path in
            guard let value, value != .null else { return }
            model[keyPath: keyPath] = try T(json: value, at: path)
        }, write: { $0[keyPath: keyPath]?.json })
    }

    /// The runtime-spec says REQUIRED: absent is an error naming the field.
    public static func required<T: JSONConvertible>(_ name: String, _ keyPath: WritableKeyPath<Model, T>) -> JSONField {
        JSONField(name: name, read: { model, value, path in
            guard let value else { throw OCISpecError(path: path, reason: "missing (required)") }
            model[keyPath: keyPath] = try T(json: value, at: path)
        }, write: { $0[keyPath: keyPath].json })
    }
}

/// Reading and writing whole files.
public enum OCIJSON {
    /// Decodes `data`; errors name `file` and the JSON path.
    public static func decode<T: JSONConvertible>(_ type: T.Type, from data: Data, file: String) throws -> T {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch let error as DecodingError {
            throw OCISpecError(file: file, path: .root, reason: "not valid JSON (\(syntaxError(data) ?? "\(error)"))")
        }
        do {
            return try T(json: value, at: .root)
        } catch let error as OCISpecError {
            throw error.inFile(file)
        }
    }

    /// Reads and decodes the file at `path`; errors name the path as given.
    public static func read<T: JSONConvertible>(_ type: T.Type, path: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = access(path, R_OK) == 0 ? "cannot read" : String(cString: strerror(errno))
            throw OCISpecError(file: path, path: .root, reason: reason)
        }
        return try decode(type, from: data, file: path)
    }

    /// Pretty-printed JSON with sorted keys.
    public static func encode<T: JSONConvertible>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value.json)
    }

    /// JSONDecoder on Linux says only "not valid JSON"; JSONSerialization says where.
    private static func syntaxError(_ data: Data) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return nil
        } catch {
            guard var text = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String else { return nil }
            if text.hasSuffix(".") { text.removeLast() }
            if let range = text.range(of: "around character "), let offset = Int(text[range.upperBound...]) {
                let before = data.prefix(offset)
                let line = before.filter { $0 == UInt8(ascii: "\n") }.count + 1
                let column = offset - (before.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
                text = String(text[..<range.lowerBound]) + "at line \(line), column \(column)"
            }
            return text
        }
    }
}
