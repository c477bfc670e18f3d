import Foundation
import OCISpec

/// What the `hook` command does with the state a runtime hands it: record the container
/// at createRuntime (or whenever it is created or running), forget it when stopped.
public struct ContainerHook: Sendable {
    public enum Outcome: Equatable, Sendable {
        case recorded(ContainerRecord)
        case removed(id: String)
        /// Nothing to do, and why (e.g. a stage whose pid is the container's own view).
        case ignored(String)
    }

    public var registry: ContainerRegistry

    public init(registry: ContainerRegistry) {
        self.registry = registry
    }

    /// `stage` is what the hook configuration says it runs at; without it the state's
    /// status decides. `runtime` names the runtime that ran the hook.
    public func handle(_ state: State, stage: HookStage?, runtime: String) throws -> Outcome {
        switch stage {
        case .poststop?:
            try registry.remove(id: state.id)
            return .removed(id: state.id)
        case .createContainer?, .startContainer?:
            return .ignored("container \(state.id): the \(stage!.rawValue) hook runs in the container's namespaces; "
                            + "configure the hook at createRuntime and poststop")
        case nil where state.status == .stopped:
            try registry.remove(id: state.id)
            return .removed(id: state.id)
        default:
            // runc gives 1 and crun 0 to hooks that run inside the container.
            guard let pid = state.pid, pid > 1 else {
                return .ignored("container \(state.id): status \(state.status.rawValue) without a host pid (\(state.pid.map(String.init) ?? "none"))")
            }
            let record = try makeRecord(state, pid: pid, runtime: runtime)
            try registry.record(record)
            return .recorded(record)
        }
    }

    func makeRecord(_ state: State, pid: Int32, runtime: String) throws -> ContainerRecord {
        guard let process = InitProcess(pid: pid) else {
            throw ContainerRegistryError("container \(state.id): pid \(pid) is not a running process")
        }
        let config: Spec
        do {
            config = try OCIJSON.read(Spec.self, path: state.bundle + "/config.json")
        } catch let error as OCISpecError {
            throw ContainerRegistryError("container \(state.id): \(error)")
        }
        let root = config.root?.path ?? "rootfs"
        let rootfs = root.hasPrefix("/") ? root : (state.bundle as NSString).appendingPathComponent(root)
        return ContainerRecord(
            id: state.id, runtime: runtime, source: .registry, pid: pid, pidStartTime: process.startTime,
            bundle: state.bundle, rootfs: rootfs, cgroupPaths: try process.cgroupPaths(),
            namespacePaths: process.namespacePaths, status: state.status,
            created: ISO8601DateFormatter().string(from: Date()),
            annotations: state.annotations ?? config.annotations ?? [:])
    }

    /// The runtime that started us: our parent's command name ("runc", "crun"). Not its
    /// exe link: crun runs hooks from a copy of itself whose link reads "/".
    public static func parentRuntime() -> String {
        let parent = getppid()
        let comm = (try? String(contentsOfFile: "/proc/\(parent)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if !comm.isEmpty { return comm }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(parent)/exe")) ?? "unknown"
        return (exe as NSString).lastPathComponent
    }
}
