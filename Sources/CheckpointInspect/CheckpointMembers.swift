import Foundation
import CheckpointArchive
import Images

/// The members of a checkpoint archive as podman and CRI-O lay them out (names from
/// checkpointctl lib/metadata.go), and which of them `inspect` reads for a set of options.
public enum CheckpointMembers {
    public static let imagesDirectory = CheckpointLayout.images
    public static let configDump = CheckpointLayout.config
    public static let specDump = CheckpointLayout.spec
    public static let statsDump = ImageName.statsDump.fileName
    public static let rootfsDiff = CheckpointLayout.rootfsDiff
    public static let deletedFiles = CheckpointLayout.deletedFiles
    public static let inventory = CheckpointLayout.images + "/" + ImageName.inventory.fileName

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
            if options.stats && (n == statsDump || n == imagesDirectory + "/" + statsDump) { return true }
            guard n.hasPrefix("checkpoint/") else { return false }
            let image = String(n.dropFirst("checkpoint/".count))
            if image.contains("/") { return false }
            guard let kind = ImageName(fileName: image)?.kind else { return false }
            if options.wantsProcesses && [.pstree, .core].contains(kind) { return true }
            if options.readsMemory && [.mm, .pagemap, .pages].contains(kind) { return true }
            if options.files && [.files, .fdinfo, .fs].contains(kind) { return true }
            if options.mounts && kind == .mountpoints { return true }
            return false
        }
    }
}
