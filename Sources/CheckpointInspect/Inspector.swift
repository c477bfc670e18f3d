import LinuxKernel
import Foundation
import Images

/// Inspects one container checkpoint laid out as a directory like podman's and CRI-O's
/// archives (config.dump, spec.dump, stats-dump, rootfs-diff.tar, checkpoint/ with the
/// CRIU images), or a bare image directory (`dump -D`). Every member but
/// checkpoint/inventory.img is optional: what is missing is left out of the report.
public struct Inspector {
    public let directory: String
    /// Sizes of the archive's members by name, when the directory holds only the members
    /// `neededMembers` chose; nil to take sizes from the files in the directory.
    public let memberSizes: [String: UInt64]?
    /// Where the CRIU images are: DIR/checkpoint, or DIR itself for a bare image directory.
    public let images: ImageDirectory

    public init(directory: String, memberSizes: [String: UInt64]? = nil) throws {
        self.directory = directory
        self.memberSizes = memberSizes.map { Dictionary($0.map { (CheckpointMembers.normalized($0.key), $0.value) }, uniquingKeysWith: +) }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw CheckpointError(.notFound, "checkpoint \(directory): no such directory")
        }
        let nested = ImageDirectory(path: (directory as NSString).appendingPathComponent(CheckpointMembers.imagesDirectory))
        let bare = ImageDirectory(path: directory)
        if nested.exists(.inventory) {
            images = nested
        } else if bare.exists(.inventory) && !FileManager.default.fileExists(atPath: nested.path) {
            images = bare
        } else {
            throw CheckpointError(.notFound, "checkpoint \(directory): no \(CheckpointMembers.inventory) (not a checkpoint, or an incomplete dump)")
        }
    }

    /// Which archive members `inspect(options)` reads (names as in the archive, "./" allowed).
    public static func neededMembers(_ options: InspectOptions) -> @Sendable (String) -> Bool {
        CheckpointMembers.needed(for: options)
    }

    public func inspect(_ options: InspectOptions) throws -> InspectReport {
        let meta = try ContainerMetadata(directory: directory)
        // Decoding the inventory checks that the images are CRIU's at all.
        let inventory = try images.readOne(.inventory, as: InventoryEntry.self)
        guard inventory.imgVersion == 2 else {
            throw CheckpointError(.image, "image \(images.file(.inventory)): unsupported image version \(inventory.imgVersion)")
        }
        var report = InspectReport(containerName: meta.name ?? "Container", image: meta.image, id: meta.id,
                                   runtime: meta.runtime, created: meta.created,
                                   checkpointed: meta.checkpointed ?? inventoryTime(), engine: meta.engine,
                                   checkpointSize: sizes())
        if options.stats { report.statistics = try statistics() }
        if options.wantsProcesses {
            let tree = try ProcessTreeReader(images: images, options: options).read()
            report.processTree = tree
            if options.files { report.fileDescriptors = try OpenFilesReader(images: images).read(tree) }
        }
        if options.mounts { report.mounts = try MountsReader(images: images).read(spec: meta.specMounts) }
        return report
    }

    /// The reports as text: the tree view, or a JSON array with one object per report.
    public static func render(_ reports: [InspectReport], format: InspectOptions.Format) throws -> String {
        switch format {
        case .tree: return reports.map(TreeView.render).joined(separator: "\n")
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            return String(decoding: try encoder.encode(reports), as: UTF8.self) + "\n"
        }
    }

    /// The time inventory.img was written: a dump writes it last (tar keeps the mtime).
    private func inventoryTime() -> String? {
        var st = stat()
        guard stat(images.file(.inventory), &st) == 0 else { return nil }
        let date = Date(timeIntervalSince1970: TimeInterval(st.st_mtim.tv_sec))
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }

    private func statistics() throws -> InspectReport.Statistics? {
        let root = ImageDirectory(path: directory)
        let dir = root.exists(.statsDump) ? root : images
        guard dir.exists(.statsDump) else { return nil }
        let entry = try dir.readOne(.statsDump, as: StatsEntry.self)
        guard entry.hasDump else { return nil }
        let d = entry.dump
        return InspectReport.Statistics(freezingTime: d.freezingTime, frozenTime: d.frozenTime,
                                        memdumpTime: d.memdumpTime, memwriteTime: d.memwriteTime,
                                        pagesScanned: d.pagesScanned, pagesWritten: d.pagesWritten,
                                        pagesSkippedParent: d.hasPagesSkippedParent ? d.pagesSkippedParent : nil,
                                        pagesLazy: d.hasPagesLazy ? d.pagesLazy : nil)
    }

    /// checkpoint/ total, its pages-* part, and rootfs-diff.tar (checkpointctl's sums).
    private func sizes() -> InspectReport.Sizes {
        var members = memberSizes ?? [:]
        if memberSizes == nil {
            // A bare image directory counts as the archive's checkpoint/ alone.
            for (name, size) in Self.regularFiles(in: images.path) { members["checkpoint/" + name] = size }
            if images.path != directory, let size = Self.regularFiles(in: directory)[CheckpointMembers.rootfsDiff] {
                members[CheckpointMembers.rootfsDiff] = size
            }
        }
        var total: UInt64 = 0, pages: UInt64 = 0
        for (name, size) in members where name.hasPrefix("checkpoint/") {
            total += size
            if name.dropFirst("checkpoint/".count).hasPrefix("pages-") { pages += size }
        }
        return InspectReport.Sizes(totalSize: total, memoryPagesSize: pages, rootFsDiffSize: members[CheckpointMembers.rootfsDiff])
    }

    /// Regular files directly in `path` (the image directory is flat) with their sizes.
    static func regularFiles(in path: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            var st = stat()
            guard lstat((path as NSString).appendingPathComponent(name), &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            out[name] = UInt64(st.st_size)
        }
        return out
    }
}
