import Foundation

/// Member names of a checkpoint archive, as podman and CRI-O lay it out (checkpointctl's
/// lib/metadata.go): the CRIU images under checkpoint/, the container's configuration
/// beside them, and the root filesystem as a tar of changes.
public enum CheckpointLayout {
    public static let images = "checkpoint"
    public static let config = "config.dump"
    public static let spec = "spec.dump"
    public static let rootfsDiff = "rootfs-diff.tar"
    public static let deletedFiles = "deleted.files"
    public static let devShm = "devshm-checkpoint.tar"
    public static let dumpLog = "dump.log"
}
