// What the fixtures hold, read through the typed model: namespaces, hooks, resources,
// seccomp, 1.2 process fields, unknown fields kept at every level, and Codable use.

import Foundation
import OCISpec
import Testing

@Suite struct ModelTests {
    func spec(_ name: String) throws -> Spec { try Spec.decode(try Fixtures.data(name), file: name) }

    @Test func runcAndCrunDefaults() throws {
        let runc = try spec("runc-spec.json"), crun = try spec("crun-spec.json")
        for s in [runc, crun] {
            #expect(s.linux?.namespaces?.map(\.type) == [.pid, .network, .ipc, .uts, .mount])
            #expect(s.process?.args == ["sh"])
            #expect(s.root?.path == "rootfs")
            #expect(s.process?.rlimits?.first?.type == "RLIMIT_NOFILE")
        }
        #expect(runc.ociVersion == "1.0.2-dev")
        #expect(crun.hostname == "crun")
    }

    @Test func everyNamespaceTypeWithUserAndTimeNamespaces() throws {
        let s = try spec("namespaces-all.json")
        let linux = try #require(s.linux)
        #expect(linux.namespaces?.map(\.type) == NamespaceType.allCases)
        #expect(linux.namespaces?[1].path == "/var/run/netns/spec-net")
        #expect(linux.uidMappings?.first?.hostID == 100000 && linux.gidMappings?.first?.size == 65536)
        #expect(linux.timeOffsets?["boottime"]?.secs == -3600)
        #expect(NamespaceType.allCases.map(\.procName) == ["pid", "net", "mnt", "ipc", "uts", "user", "cgroup", "time"])
    }

    @Test func mountsAndHooks() throws {
        let m = try spec("mounts.json")
        #expect(m.mounts?.last?.uidMappings?.first?.hostID == 1000)
        #expect(m.mounts?.first { $0.destination == "/run" }?.options?.contains("size=16m") == true)
        let h = try #require(try spec("hooks.json").hooks)
        #expect(h.byStage.map(\.stage) == [.prestart, .createRuntime, .createContainer, .startContainer, .poststart, .poststop])
        #expect(h.createRuntime?.first?.timeout == 10)
        #expect(h.poststop?.count == 2)
        #expect(h.prestart?.first?.env == ["key1=value1"])
    }

    @Test func resourcesAndSeccomp() throws {
        let r = try #require(try spec("resources.json").linux?.resources)
        #expect(r.memory?.limit == 536870912 && r.memory?.kernel == -1)
        #expect(r.cpu?.cpus == "2-3" && r.cpu?.realtimeRuntime == 950000)
        #expect(r.blockIO?.throttleReadIOPSDevice?.first?.rate == UInt64.max)
        #expect(r.rdma?["mlx5_1"]?.hcaHandles == 3)
        #expect(r.unified?["memory.high"] == "1073741824")
        #expect(r.network?.priorities?.map(\.name) == ["eth0", "eth1"])
        #expect(r.pids?.limit == 32771)
        let sc = try #require(try spec("seccomp.json").linux?.seccomp)
        #expect(sc.defaultAction == .errno && sc.defaultErrnoRet == 1)
        #expect(sc.syscalls?[2].args?.first?.op == .maskedEqual)
        #expect(sc.syscalls?.last?.errnoRet == 38)
    }

    @Test func runtimeSpec12FieldsAndUnknownFieldsAtEveryLevel() throws {
        let s = try spec("process-1.2.json")
        let p = try #require(s.process)
        #expect(p.scheduler?.policy == "SCHED_DEADLINE" && p.scheduler?.deadline == 30000000)
        #expect(p.ioPriority?.class == "IOPRIO_CLASS_RT")
        #expect(p.execCPUAffinity?.final == "0-3,7")
        #expect(p.user.additionalGids == [5, 6] && p.user.umask == 18)
        #expect(s.linux?.personality?.domain == .linux32)
        #expect(s.linux?.memoryPolicy?.nodes == "2-3")
        #expect(s.linux?.intelRdt?.enableMonitoring == true)

        #expect(s.unknownFields["x-future-top"] == .string("kept"))
        #expect(s.root?.unknownFields["x-future-root"] == .uint(UInt64.max))
        #expect(p.unknownFields["x-future-process"] == .object(["nested": .array([.int(1), .double(2.5), .null, .bool(true), .string("x")])]))
        #expect(s.linux?.namespaces?.first?.unknownFields["x-future-ns"] == .object(["a": .string("b")]))
        #expect(s.linux?.unknownFields["x-future-linux"] == .array([.object(["k": .int(-1)])]))

        // Changed and written again, the unknown fields are still there.
        var changed = s
        changed.hostname = "changed"
        let again = try Spec.decode(try OCIJSON.encode(changed))
        #expect(again.hostname == "changed")
        #expect(again.process?.unknownFields == p.unknownFields)
        #expect(again.root?.unknownFields["x-future-root"] == .uint(UInt64.max))
    }

    /// A model inside any Codable type goes through JSONDecoder and JSONEncoder as it is.
    @Test func modelsAreCodable() throws {
        struct Envelope: Codable, Equatable {
            var name: String
            var spec: Spec
        }
        let spec = try spec("process-1.2.json")
        let data = try JSONEncoder().encode(Envelope(name: "x", spec: spec))
        let back = try JSONDecoder().decode(Envelope.self, from: data)
        #expect(back == Envelope(name: "x", spec: spec))
        // Errors raised through JSONDecoder carry the full path.
        let bad = Data(#"{"name": "x", "spec": {"ociVersion": "1.0.0", "linux": {"namespaces": [{"type": "pid"}, {"type": "bogus"}]}}}"#.utf8)
        #expect(throws: OCISpecError(path: JSONPath([.key("spec"), .key("linux"), .key("namespaces"), .index(1), .key("type")]),
                                     reason: "\"bogus\" is not a namespace type (pid, network, mount, ipc, uts, user, cgroup, time)")) {
            _ = try JSONDecoder().decode(Envelope.self, from: bad)
        }
    }

    @Test func hookConfigInTheSpec() throws {
        var s = try spec("runc-spec.json")
        var hooks = Hooks()
        hooks.createRuntime = [Hook(path: "/usr/local/bin/ocicheckpoint", args: ["ocicheckpoint", "hook"], timeout: 5)]
        hooks.poststop = [Hook(path: "/usr/local/bin/ocicheckpoint", args: ["ocicheckpoint", "hook"])]
        s.hooks = hooks
        let back = try Spec.decode(try OCIJSON.encode(s))
        #expect(back.hooks == hooks)
        s.hooks?.poststop?[0].timeout = -1
        #expect(throws: OCISpecError(path: JSONPath([.key("hooks"), .key("poststop"), .index(0), .key("timeout")]),
                                     reason: "-1 must be greater than zero")) { try s.validate() }
    }
}

@Suite struct HooksFileTests {
    static let hooksDirectory = URL(fileURLWithPath: Fixtures.directory).deletingLastPathComponent().path + "/hooks"

    @Test func shippedHookFilesRunTheHookAtCreateRuntimeAndPoststop() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.hooksDirectory).sorted()
        #expect(names == ["ocicheckpoint-createruntime.json", "ocicheckpoint-poststop.json"])
        var hooks = Hooks()
        for name in names {
            let file = try OCIHooksFile.read(path: Self.hooksDirectory + "/" + name)
            #expect(file.version == "1.0.0" && file.when.always == true)
            #expect(file.hook.path == "/usr/local/bin/ocicheckpoint")
            #expect(file.hook.args?.prefix(2) == ["ocicheckpoint", "hook"])
            hooks = file.applied(to: hooks)
        }
        #expect(hooks.byStage.map(\.stage) == [.createRuntime, .poststop])
        #expect(hooks.createRuntime?.first?.args == ["ocicheckpoint", "hook", "--stage", "createRuntime"])
        #expect(hooks.poststop?.first?.args == ["ocicheckpoint", "hook", "--stage", "poststop"])
        // In a config.json, the hooks validate and survive a round trip.
        var spec = try Spec.decode(try Fixtures.data("crun-spec.json"))
        spec.hooks = hooks
        #expect(try Spec.decode(try OCIJSON.encode(spec)).hooks == hooks)
    }

    @Test func badHookFileGivesItsError() throws {
        let data = Data(#"{"version": "1.0.0", "hook": {"path": "/x"}, "when": {"always": true}, "stages": ["createRuntime", "precreat"]}"#.utf8)
        let file = try OCIJSON.decode(OCIHooksFile.self, from: data, file: "h.json")
        #expect(throws: OCISpecError(path: JSONPath([.key("stages"), .index(1)]),
                                     reason: "\"precreat\" is not a hook stage (prestart, createRuntime, createContainer, startContainer, poststart, poststop, precreate)")) {
            try file.validate()
        }
        let noCondition = try OCIJSON.decode(OCIHooksFile.self, from: Data(#"{"version": "1.0.0", "hook": {"path": "/x"}, "when": {}, "stages": ["poststop"]}"#.utf8), file: "h.json")
        #expect(throws: OCISpecError(path: JSONPath([.key("when")]), reason: "sets no condition")) { try noCondition.validate() }
    }
}
