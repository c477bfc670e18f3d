import Foundation
import OCISpec

/// Finds a container by id: in runc's state directory, then crun's, then the hook
/// registry. What it returns names the live init process and, from the runtime's own
/// state, bundle, rootfs, cgroups and namespaces.
///
///     let container = try ContainerLocator().find("web")
///     // container.pid, container.bundle, container.freezerPath, container.status
public struct ContainerLocator: Sendable {
    public var runcRoot: String
    public var crunRoot: String
    public var registry: ContainerRegistry

    public init(runcRoot: String = "/run/runc", crunRoot: String = "/run/crun",
                registry: ContainerRegistry = ContainerRegistry()) {
        self.runcRoot = runcRoot
        self.crunRoot = crunRoot
        self.registry = registry
    }

    /// The container `id`. runc and crun containers whose init is gone come back with
    /// status `.stopped`; stale registry entries are removed and not found.
    /// Throws "container X: not found in /run/runc, /run/crun or the hook registry
    /// /run/ocicheckpoint", or the runtime's state file and what is wrong with it.
    public func find(_ id: String) throws -> ContainerRecord {
        try checkContainerID(id)
        if let record = try runc(id) ?? crun(id) ?? registry.entry(id: id) { return record }
        throw ContainerRegistryError(
            "container \(id): not found in \(runcRoot), \(crunRoot) or the hook registry \(registry.directory)")
    }

    func runc(_ id: String) throws -> ContainerRecord? {
        let path = runcRoot + "/" + id + "/state.json"
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let state = try readState(RuncState.self, path, id)
        let alive = InitProcess.alive(pid: state.initProcessPid, startTime: state.initProcessStart)
        var namespaces: [String: String] = [:]
        for (name, nsPath) in state.namespacePaths ?? [:] {
            if let type = NamespaceType(libcontainerName: name) { namespaces[type.rawValue] = nsPath }
        }
        var annotations: [String: String] = [:]
        for label in state.config.labels ?? [] {
            let pair = label.split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0] != "bundle" { annotations[String(pair[0])] = String(pair[1]) }
        }
        return ContainerRecord(
            id: state.id, runtime: "runc", source: .runc, pid: state.initProcessPid,
            pidStartTime: state.initProcessStart, bundle: state.bundle ?? "", rootfs: state.config.rootfs,
            cgroupPaths: state.cgroupPaths ?? [:], namespacePaths: namespaces,
            status: status(alive: alive, stateDirectory: runcRoot + "/" + id), created: state.created,
            annotations: annotations)
    }

    func crun(_ id: String) throws -> ContainerRecord? {
        let path = crunRoot + "/" + id + "/status"
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let status = try readState(CrunStatus.self, path, id)
        // crun keeps no cgroup or namespace paths: the live init tells them.
        let process = InitProcess.alive(pid: status.pid, startTime: status.processStartTime) ? InitProcess(pid: status.pid) : nil
        let config = try? Spec.read(path: crunRoot + "/" + id + "/config.json")
        return ContainerRecord(
            id: id, runtime: "crun", source: .crun, pid: status.pid, pidStartTime: status.processStartTime,
            bundle: status.bundle, rootfs: status.rootfsPath,
            cgroupPaths: (try? process?.cgroupPaths()) ?? [:], namespacePaths: process?.namespacePaths ?? [:],
            status: self.status(alive: process != nil, stateDirectory: crunRoot + "/" + id), created: status.created,
            annotations: config?.annotations ?? [:])
    }

    /// runc and crun keep exec.fifo until `start` opens it: created, not yet running.
    private func status(alive: Bool, stateDirectory: String) -> ContainerStatus {
        guard alive else { return .stopped }
        return FileManager.default.fileExists(atPath: stateDirectory + "/exec.fifo") ? .created : .running
    }

    private func readState<T: JSONConvertible>(_ type: T.Type, _ path: String, _ id: String) throws -> T {
        do {
            return try OCIJSON.read(T.self, path: path)
        } catch let error as OCISpecError {
            throw ContainerRegistryError("container \(id): \(error)")
        }
    }
}
