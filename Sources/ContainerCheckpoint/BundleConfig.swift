import Foundation
import Engine

/// config.json of a restored bundle: the spec the container ran with (spec.dump), its root
/// at the bundle's rootfs/, and cgroup paths that named the old id renamed for the new one,
/// so one archive restores several times side by side.
enum BundleConfig {
    static func write(bundle: String, oldID: String, newID: String) throws {
        let specPath = bundle + "/" + CheckpointLayout.spec
        guard let data = FileManager.default.contents(atPath: specPath),
              var spec = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CheckpointError(.image, "\(specPath): missing or not a JSON object")
        }
        var root = spec["root"] as? [String: Any] ?? [:]
        root["path"] = "rootfs"
        spec["root"] = root
        if var linux = spec["linux"] as? [String: Any], let path = linux["cgroupsPath"] as? String, oldID != newID {
            linux["cgroupsPath"] = path.replacingOccurrences(of: oldID, with: newID)
            spec["linux"] = linux
        }
        let out = try JSONSerialization.data(withJSONObject: spec, options: [.prettyPrinted, .sortedKeys])
        try writeFile(bundle + "/config.json", out)
    }
}
