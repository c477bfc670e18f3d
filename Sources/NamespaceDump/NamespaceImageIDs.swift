import Foundation
import Engine
import LinuxKernel
import Images
import ProcFS

/// The small ids that name per-namespace images (utsns-<id>.img, ipcns-var-<id>.img, ...):
/// the engine's own numbering (`NamespaceIDs`), which also fills ids-PID.img and inventory.img.
public enum NamespaceImageIDs {
    /// The ids the engine gives the root task's namespaces.
    public static func forRoot(_ set: NamespaceSet) -> [NamespaceKind: UInt32] {
        var numbering = NamespaceIDs()
        return numbering.ids(for: set)
    }

    /// The id of the root task's `kind` namespace in a dump: from the root task's ids image
    /// when it is there, else the id of the one `image` in the directory; nil when the dump
    /// has no image of that kind.
    public static func restoreID(_ kind: NamespaceKind, image: ImageKind, in images: ImageDirectory) throws -> UInt32? {
        if let id = try images.rootTaskIds()?[namespace: kind], images.exists(ImageName(image, id)) {
            return id
        }
        let ids = images.list(image).compactMap { $0.id.flatMap { UInt32(exactly: $0) } }
        guard ids.count <= 1 else {
            throw CheckpointError(.unsupported, "image directory \(images.path): \(ids.count) \(image) images (\(ids.sorted())); only one \(kind.rawValue) namespace per tree is supported")
        }
        return ids.first
    }
}
