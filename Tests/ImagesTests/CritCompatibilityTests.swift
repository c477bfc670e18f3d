import Foundation
import Images
import Testing

/// Decodes images with CRIU's own `crit` (Debian package criu): it picks the decoder by the
/// image magic and parses with CRIU's descriptors, so a wrong magic, field number or wire type
/// shows up here. Never skipped: a machine without crit fails these tests.
enum Crit {
    static let python = "/usr/bin/python3"  // the pyenv python3 lacks google.protobuf
    static let crit = "/usr/bin/crit"

    struct Output {
        let status: Int32
        let json: Data
        let stderr: String
    }

    static func decode(_ path: String, scratch: URL) throws -> Output {
        let out = scratch.appendingPathComponent("crit.out")
        let err = scratch.appendingPathComponent("crit.err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: out)
        let errHandle = try FileHandle(forWritingTo: err)
        defer { try? outHandle.close(); try? errHandle.close() }

        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [crit, "decode", "-i", path, "--pretty"]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = outHandle
        p.standardError = errHandle
        try p.run()
        p.waitUntilExit()
        return Output(status: p.terminationStatus,
                      json: (try? Data(contentsOf: out)) ?? Data(),
                      stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }
}

/// One decoded entry: field access by dotted path, numbers accepted as JSON numbers or
/// crit's "0x..." hex strings (fields with the (criu).hex option).
struct Entry {
    let raw: [String: Any]

    func value(_ path: String) -> Any? {
        var cur: Any? = raw
        for key in path.split(separator: ".") {
            if let i = Int(key), let arr = cur as? [Any] {
                cur = i < arr.count ? arr[i] : nil
            } else {
                cur = (cur as? [String: Any])?[String(key)]
            }
        }
        return cur
    }

    func int(_ path: String) -> Int64? {
        switch value(path) {
        case let n as NSNumber: return n.int64Value
        case let s as String where s.hasPrefix("0x"): return UInt64(s.dropFirst(2), radix: 16).map { Int64(bitPattern: $0) }
        case let s as String: return Int64(s)
        default: return nil
        }
    }

    func string(_ path: String) -> String? { value(path) as? String }
    func count(_ path: String) -> Int? { (value(path) as? [Any])?.count }
    func payload(_ path: String = "extra") -> Data? {
        string(path).flatMap { Data(base64Encoded: $0, options: .ignoreUnknownCharacters) }
    }
}

struct CritCase: Sendable, CustomTestStringConvertible {
    let file: String
    let magic: ImageMagic
    let critName: String
    let write: @Sendable (ImageWriter) throws -> Void
    let check: @Sendable ([Entry]) -> Void
    var testDescription: String { file }
}

@Suite("crit compatibility")
struct CritCompatibilityTests {
    static let cases: [CritCase] = CritCases.all

    @Test("crit is installed")
    func critInstalled() {
        #expect(FileManager.default.isExecutableFile(atPath: Crit.python),
                "\(Crit.python) is missing: the crit tests need Debian's python3 with google.protobuf")
        #expect(FileManager.default.fileExists(atPath: Crit.crit),
                "\(Crit.crit) is missing: install the Debian 'criu' package (it ships crit and pycriu); these tests are never skipped")
    }

    @Test("crit decodes the image", arguments: cases)
    func decode(_ c: CritCase) throws {
        try #require(FileManager.default.fileExists(atPath: Crit.crit),
                     "\(Crit.crit) is missing: install the Debian 'criu' package (apt-get install criu)")
        try #require(FileManager.default.isExecutableFile(atPath: Crit.python), "\(Crit.python) is missing")
        #expect(ImageMagic.named(c.file) == c.magic, "ImageMagic.named(\"\(c.file)\") disagrees with the magic used")

        let dir = try Fixtures.tempDir(c.file)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent(c.file).path
        let w = try ImageWriter(path: path, magic: c.magic)
        try c.write(w)
        try w.close()

        let out = try Crit.decode(path, scratch: dir)
        try #require(out.status == 0, "crit decode \(c.file) exited \(out.status): \(out.stderr)")
        let obj = try JSONSerialization.jsonObject(with: out.json) as? [String: Any]
        let json = try #require(obj, "crit printed no JSON object: \(String(decoding: out.json, as: UTF8.self))")
        #expect(json["magic"] as? String == c.critName)
        let entries = try #require(json["entries"] as? [[String: Any]], "no entries in \(json)")
        c.check(entries.map(Entry.init))
    }
}
