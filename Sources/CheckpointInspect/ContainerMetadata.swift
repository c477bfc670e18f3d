import LinuxKernel
import Foundation

/// What config.dump (the engine's container config) and spec.dump (the OCI config the
/// runtime ran) say about the container. Both are optional: a bare image directory has
/// neither. Which engine wrote them is told by spec.dump's `io.container.manager`
/// annotation: libpod (Podman), cri-o, or none (containerd), as checkpointctl reads it.
struct ContainerMetadata {
    var name: String?
    var id: String?
    var image: String?
    var runtime: String?
    var engine: String?
    var created: String?
    var checkpointed: String?
    var specMounts: [(destination: String, type: String, source: String)] = []

    init(directory: String) throws {
        let config = try Self.json(directory, CheckpointMembers.configDump)
        let spec = try Self.json(directory, CheckpointMembers.specDump)
        let annotations = spec?["annotations"] as? [String: String] ?? [:]
        id = config?["id"] as? String
        image = config?["rootfsImageName"] as? String
        runtime = config?["runtime"] as? String
        checkpointed = Self.nonZeroTime(config?["checkpointedTime"])
        switch annotations["io.container.manager"] {
        case "libpod":
            engine = "Podman"
            name = config?["name"] as? String
            created = Self.nonZeroTime(config?["createdTime"])
        case "cri-o":
            engine = "CRI-O"
            if let meta = annotations["io.kubernetes.cri-o.Metadata"],
               let object = try? JSONSerialization.jsonObject(with: Data(meta.utf8)) as? [String: Any] {
                name = object["name"] as? String
            }
            created = annotations["io.kubernetes.cri-o.Created"]
        default:
            // Our own archives name the engine in config.dump; containerd's carry no manager.
            engine = config?["checkpointEngine"] as? String ?? (spec == nil ? nil : "containerd")
            name = annotations["io.kubernetes.cri.container-name"] ?? config?["name"] as? String
            created = Self.nonZeroTime(config?["createdTime"])
        }
        for m in spec?["mounts"] as? [[String: Any]] ?? [] {
            specMounts.append((m["destination"] as? String ?? "", m["type"] as? String ?? "", m["source"] as? String ?? ""))
        }
    }

    /// Go writes an unset time.Time as "0001-01-01T00:00:00Z".
    private static func nonZeroTime(_ value: Any?) -> String? {
        guard let s = value as? String, !s.isEmpty, !s.hasPrefix("0001-01-01") else { return nil }
        return s
    }

    private static func json(_ directory: String, _ member: String) throws -> [String: Any]? {
        let path = (directory as NSString).appendingPathComponent(member)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: data), let dict = object as? [String: Any] else {
            throw CheckpointError(.invalidArgument, "checkpoint member \(path): not a JSON object")
        }
        return dict
    }
}
