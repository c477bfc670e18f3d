import Foundation
import LinuxKernel
import OCISpec
import CheckpointArchive

/// config.json of a restored bundle: the spec the container ran with (spec.dump, checked by
/// the OCI model, unknown fields kept), its root at the bundle's rootfs/, and cgroup paths
/// that named the old id renamed for the new one, so one archive restores several times
/// side by side.
enum BundleConfig {
    static func write(bundle: String, oldID: String, newID: String) throws {
        var spec: Spec
        do { spec = try Spec.read(path: bundle + "/" + CheckpointLayout.spec) } catch let e as OCISpecError {
            throw e.checkpointError
        }
        var root = spec.root ?? Root()
        root.path = "rootfs"
        spec.root = root
        if let path = spec.linux?.cgroupsPath, oldID != newID {
            spec.linux?.cgroupsPath = path.replacingOccurrences(of: oldID, with: newID)
        }
        try writeFile(bundle + "/config.json", try OCIJSON.encode(spec))
    }
}
