import Foundation

/// The annotations a checkpoint image carries: checkpointctl's shared `org.criu.checkpoint.*`
/// keys and podman's `io.podman.annotations.checkpoint.*`, which `podman container restore`
/// reads from a checkpoint image.
public enum CheckpointAnnotations {
    public static func standard(containerName: String, runtimeName: String, runtimeVersion: String,
                                criuVersion: String, engineVersion: String,
                                rootfsImageName: String? = nil, rootfsImageID: String? = nil) -> [String: String] {
        let host = HostFacts.current
        var criu: [String: String] = [
            "container.name": containerName,
            "engine.name": "ocicheckpoint",
            "engine.version": engineVersion,
            "runtime.name": runtimeName,
            "runtime.version": runtimeVersion,
            "criu.version": criuVersion,
            "host.arch": host.arch,
            "host.kernel": host.kernel,
            "cgroup.version": host.cgroupVersion,
            "distribution.name": host.distributionName,
            "distribution.version": host.distributionVersion,
        ]
        var podman: [String: String] = [
            "name": containerName,
            "runtime.name": runtimeName,
            "runtime.version": runtimeVersion,
            "criu.version": criuVersion,
            "host.arch": host.arch,
            "host.kernel": host.kernel,
            "cgroups.version": host.cgroupVersion,
            "distribution.name": host.distributionName,
            "distribution.version": host.distributionVersion,
        ]
        if let rootfsImageName {
            criu["rootfsImageName"] = rootfsImageName
            podman["rootfsImageName"] = rootfsImageName
        }
        if let rootfsImageID {
            criu["rootfsImageID"] = rootfsImageID
            podman["rootfsImageID"] = rootfsImageID
        }
        var all: [String: String] = [:]
        for (key, value) in criu { all["org.criu.checkpoint." + key] = value }
        for (key, value) in podman { all["io.podman.annotations.checkpoint." + key] = value }
        return all
    }
}

/// What the annotations say about the machine the checkpoint was taken on.
struct HostFacts {
    let arch: String
    let kernel: String
    let cgroupVersion: String
    let distributionName: String
    let distributionVersion: String

    static var current: HostFacts {
        var names = utsname()
        uname(&names)
        let machine = withUnsafeBytes(of: &names.machine) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        let release = withUnsafeBytes(of: &names.release) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        let osRelease = (try? String(contentsOfFile: "/etc/os-release", encoding: .utf8)) ?? ""
        var fields: [String: String] = [:]
        for line in osRelease.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { fields[parts[0]] = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        let goArch = ["x86_64": "amd64", "aarch64": "arm64"][machine] ?? machine
        let cgroup2 = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
        return HostFacts(arch: goArch, kernel: release, cgroupVersion: cgroup2 ? "v2" : "v1",
                         distributionName: fields["ID"] ?? "unknown", distributionVersion: fields["VERSION_ID"] ?? "unknown")
    }
}
