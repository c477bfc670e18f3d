// Every file in spec-fixtures/ decodes with its model, re-encodes and decodes equal, with
// the fields the model does not know kept; each case in spec-fixtures/malformed/ fails with
// exactly the one-line error in its expected-error file.

import Foundation
import OCISpec
import Testing

enum Fixtures {
    static let directory: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("spec-fixtures").path

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
    }

    static func names(_ sub: String = "") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/" + sub)) ?? []).sorted()
    }

    static var configs: [String] { names().filter { $0.hasSuffix(".json") && !$0.hasPrefix("state-") && !$0.hasPrefix("runc-state") && !$0.hasPrefix("crun-status") } }
    static var hookStates: [String] { names().filter { $0.hasPrefix("state-") } }
    static var malformed: [String] { names("malformed") }
}

/// The value with every null member of every object removed: a typed optional that was
/// null is written back as absent, which means the same to every reader.
func withoutNulls(_ value: JSONValue) -> JSONValue {
    switch value {
    case .object(let members): return .object(members.filter { $0.value != .null }.mapValues(withoutNulls))
    case .array(let items): return .array(items.map(withoutNulls))
    default: return value
    }
}

/// Decodes, re-encodes, decodes again; expects equal models and the same JSON.
func roundTrip<T: JSONModel>(_ type: T.Type, _ name: String) throws -> T {
    let original = try Fixtures.data(name)
    let model = try OCIJSON.decode(T.self, from: original, file: name)
    let encoded = try OCIJSON.encode(model)
    let again = try OCIJSON.decode(T.self, from: encoded, file: name + " (re-encoded)")
    #expect(again == model, "\(name): the re-encoded file decodes differently")
    let before = try JSONDecoder().decode(JSONValue.self, from: original)
    let after = try JSONDecoder().decode(JSONValue.self, from: encoded)
    #expect(withoutNulls(before) == withoutNulls(after), "\(name): re-encoding lost or changed fields")
    return model
}

@Suite struct FixtureTests {
    @Test func fixturesArePresent() {
        #expect(Fixtures.configs.count >= 8, "configs: \(Fixtures.configs)")
        #expect(Fixtures.hookStates.count == 8)
        #expect(Fixtures.malformed.count >= 25)
    }

    @Test(arguments: Fixtures.configs)
    func configRoundTrips(name: String) throws {
        let spec = try roundTrip(Spec.self, name)
        try spec.validate()
        _ = try Spec.decode(try Fixtures.data(name), file: name)
    }

    @Test(arguments: Fixtures.hookStates)
    func hookStateRoundTrips(name: String) throws {
        let state = try roundTrip(State.self, name)
        try state.validate()
        #expect(state.annotations?["org.example.spec"] == "fixture")
        #expect(state.bundle.hasPrefix("/tmp/spec-cap/b-"))
    }

    @Test func runcStateRoundTrips() throws {
        let state = try roundTrip(RuncState.self, "runc-state.json")
        #expect(state.id == "spec-cap-runc")
        #expect(state.initProcessPid == 30482)
        #expect(state.initProcessStart == 980914)
        #expect(state.bundle == "/tmp/spec-cap")
        #expect(state.config.rootfs == "/tmp/spec-cap/rootfs")
        #expect(state.config.namespaces?.compactMap(\.namespaceType) == [.pid, .network, .ipc, .uts, .mount])
        #expect(state.cgroupPaths?["freezer"] == "/sys/fs/cgroup/freezer/spec-cap-runc")
        #expect(state.namespacePaths?["NEWNET"] == "/proc/30482/ns/net")
        #expect(state.config.cgroups?.name == "spec-cap-runc")
        // Fields this model leaves untyped survive: mounts, devices, capabilities.
        #expect(state.config.unknownFields["devices"] != nil)
        #expect(state.config.unknownFields["capabilities"] != nil)
        #expect(state.config.mounts?.count == 7)
    }

    @Test func crunStatusRoundTrips() throws {
        let status = try roundTrip(CrunStatus.self, "crun-status.json")
        #expect(status.pid == 31125)
        #expect(status.processStartTime == 981404)
        #expect(status.cgroupPath == "/spec-cap-crun")
        #expect(status.rootfsPath == "/tmp/spec-cap/rootfs")
        #expect(status.descriptors == ["/dev/null", "/tmp/spec-cap/run.out", "/tmp/spec-cap/run.err"])
    }

    @Test(arguments: Fixtures.malformed)
    func malformedFileGivesItsError(name: String) throws {
        let dir = "malformed/" + name
        let expected = try String(contentsOfFile: Fixtures.directory + "/" + dir + "/expected-error", encoding: .utf8)
            .trimmingCharacters(in: .newlines)
        let file = try #require(Fixtures.names(dir).first { $0 != "expected-error" })
        let data = try Fixtures.data(dir + "/" + file)
        do {
            switch (name.split(separator: "-").first, file) {
            case ("runc", _): _ = try OCIJSON.decode(RuncState.self, from: data, file: file)
            case ("crun", _): _ = try OCIJSON.decode(CrunStatus.self, from: data, file: file)
            case ("state", _): _ = try State.decode(data, file: file)
            default: _ = try Spec.decode(data, file: file)
            }
            Issue.record("\(dir)/\(file) decoded; expected: \(expected)")
        } catch let error as OCISpecError {
            #expect("\(error)" == expected)
            #expect(!"\(error)".contains("\n"))
        }
    }
}
