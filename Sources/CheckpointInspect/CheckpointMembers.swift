import Foundation
import CheckpointArchive

/// The members of a checkpoint archive as podman and CRI-O lay them out (names from
/// checkpointctl lib/metadata.go), and which of them `inspect` reads for a set of options.
public enum CheckpointMembers {
    public static let imagesDirectory = CheckpointLayout.images
    public static let configDump = CheckpointLayout.config
    public static let specDump = CheckpointLayout.spec
    public static let statsDump = CheckpointLayout.statsDump
    public static let rootfsDiff = CheckpointLayout.rootfsDiff
    public static let deletedFiles = CheckpointLayout.deletedFiles
    public static let inventory = CheckpointLayout.images + "/inventory.img"

    /// A member name as archives spell it ("./checkpoint/core-1.img", "/config.dump")
    /// reduced to the form used here ("checkpoint/core-1.img").
    public static func normalized(_ name: String) -> String {
        var n = Substring(name)
        while n.hasPrefix("./") { n = n.dropFirst(2) }
        while n.hasPrefix("/") { n = n.dropFirst() }
        while n.hasSuffix("/") { n = n.dropLast() }
        return String(n)
    }

    /// The members `inspect` reads with `options`; everything else need not be extracted.
    /// Sizes are not read from files when the caller passes the archive's member sizes
    /// (`Inspector(directory:memberSizes:)`), so pages and rootfs-diff.tar stay in the
    /// archive unless command lines or environments are wanted.
    public static func needed(for options: InspectOptions) -> @Sendable (String) -> Bool {
        return { name in
            let n = normalized(name)
            if n == configDump || n == specDump || n == inventory { return true }
            if options.stats && (n == statsDump || n == "checkpoint/stats-dump") { return true }
            guard n.hasPrefix("checkpoint/") else { return false }
            let image = String(n.dropFirst("checkpoint/".count))
            if image.contains("/") { return false }
            if options.wantsProcesses && (image == "pstree.img" || isNumbered(image, "core")) { return true }
            if options.readsMemory && (isNumbered(image, "mm") || isNumbered(image, "pagemap") || isNumbered(image, "pages")) { return true }
            if options.files && (image == "files.img" || isNumbered(image, "fdinfo") || isNumbered(image, "fs")) { return true }
            if options.mounts && isNumbered(image, "mountpoints") { return true }
            return false
        }
    }

    /// "stem-<decimal>.img" ("pagemap-shmem-5.img" is not "pagemap").
    static func isNumbered(_ image: String, _ stem: String) -> Bool {
        guard image.hasPrefix(stem + "-"), image.hasSuffix(".img") else { return false }
        let id = image.dropFirst(stem.count + 1).dropLast(4)
        return !id.isEmpty && id.allSatisfy(\.isNumber)
    }
}
