import Foundation
import LinuxKernel

/// A podman container as `podman container inspect` shows it: what a checkpoint needs to
/// write podman's own config.dump and rootfs-diff.tar. podman (as root) runs runc with
/// runc's default state root, so runc knows the container under its full id.
public struct PodmanContainer {
    /// The inspect JSON object, kept whole: config.dump takes many small fields from it.
    let inspect: [String: Any]

    public var id: String { inspect["Id"] as? String ?? "" }
    public var name: String { inspect["Name"] as? String ?? "" }
    var imageID: String { inspect["Image"] as? String ?? "" }
    var imageName: String { inspect["ImageName"] as? String ?? "" }
    var created: String { inspect["Created"] as? String ?? "" }
    var staticDir: String { inspect["StaticDir"] as? String ?? "" }
    var config: [String: Any] { inspect["Config"] as? [String: Any] ?? [:] }
    var hostConfig: [String: Any] { inspect["HostConfig"] as? [String: Any] ?? [:] }
    private var graphDriver: [String: Any] { inspect["GraphDriver"] as? [String: Any] ?? [:] }
    private var graphData: [String: Any] { graphDriver["Data"] as? [String: Any] ?? [:] }
    var upperDir: String { graphData["UpperDir"] as? String ?? "" }
    var lowerDirs: [String] { (graphData["LowerDir"] as? String ?? "").split(separator: ":").map(String.init) }
    var networkMode: String { hostConfig["NetworkMode"] as? String ?? "" }

    /// podman's own binary, when installed.
    static func podman() -> String? {
        ["/usr/bin/podman", "/usr/local/bin/podman"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The container podman knows by `nameOrID`, or nil (also when podman is not installed).
    public static func find(_ nameOrID: String) throws -> PodmanContainer? {
        guard let podman = podman() else { return nil }
        let r = try Subprocess.run([podman, "container", "inspect", nameOrID])
        guard r.ok else { return nil }
        let json = r.output.drop { $0 != "[" }
        guard let list = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]], let first = list.first else {
            throw CheckpointError(.invalidState, "podman container inspect \(nameOrID): unreadable answer")
        }
        return PodmanContainer(inspect: first)
    }

    /// Whether a runc bundle's config.json was written by podman (libpod's annotations).
    static func isPodmanBundle(_ bundle: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: bundle + "/config.json"),
              let spec = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let annotations = spec["annotations"] as? [String: Any] else { return false }
        return annotations.keys.contains { $0.hasPrefix("io.podman.annotations.") }
    }

    /// What podman's import could not rebuild from the archive we write, refused before the
    /// container is touched.
    func refuseUnsupported() throws {
        let what = "podman container \(name)"
        if let pod = inspect["Pod"] as? String, !pod.isEmpty {
            throw CheckpointError(.unsupported, "\(what): is in pod \(pod); pod containers are not exported")
        }
        if let deps = inspect["Dependencies"] as? [Any], !deps.isEmpty {
            throw CheckpointError(.unsupported, "\(what): depends on other containers; podman imports only containers without dependencies")
        }
        let mounts = inspect["Mounts"] as? [[String: Any]] ?? []
        if let volume = mounts.first(where: { $0["Type"] as? String == "volume" }) {
            throw CheckpointError(.unsupported, "\(what): named volume \(volume["Name"] ?? "?") at \(volume["Destination"] ?? "?") is not exported")
        }
        if imageID.isEmpty || !(inspect["Rootfs"] as? String ?? "").isEmpty {
            throw CheckpointError(.unsupported, "\(what): runs on --rootfs, not an image; podman's import needs the image")
        }
        if let userns = hostConfig["UsernsMode"] as? String, !userns.isEmpty, userns != "host" {
            throw CheckpointError(.unsupported, "\(what): user namespace (\(userns)): its ID mappings are not exported")
        }
        if !["none", "host"].contains(networkMode) {
            throw CheckpointError(.unsupported, "\(what): network mode \(networkMode): only --network none or host is exported (its network namespace is podman's, outside the container)")
        }
        if graphDriver["Name"] as? String != "overlay" || upperDir.isEmpty {
            throw CheckpointError(.unsupported, "\(what): storage driver \(graphDriver["Name"] ?? "?"): only overlay is supported (its upper directory holds the changes)")
        }
    }
}
