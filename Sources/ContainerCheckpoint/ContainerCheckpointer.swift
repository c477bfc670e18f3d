import Foundation
import LinuxKernel
import CheckpointArchive
import ContainerRegistry

/// `ocicheckpoint checkpoint`: runc checkpoints the container with this binary as its
/// engine; with an export, the images, the container's configuration and its root
/// filesystem become one archive in podman's layout.
public struct ContainerCheckpointer {
    public struct Request {
        public var id: String
        /// runc's own checkpoint flags, passed through (--leave-running, --tcp-established...).
        public var runcFlags: [String] = []
        public var imagePath: String?
        public var workPath: String?
        public var export: String?
        public var compression: ArchiveCompression = .zstd
        public var rootfsBase: String?
        /// DIR or DIR:TAG of an OCI image layout.
        public var exportImage: String?
        /// Signs the manifest of the archive or image; without an export, seals the image directory.
        public var signingKey: SigningKey?
        /// Where `--export` runs keep their journals (CheckpointJournal).
        public var journalDirectory = CheckpointJournal.defaultDirectory
        public init(id: String) { self.id = id }
    }

    public let runc: Runc
    /// Finds containers runc does not know: crun's, or any runtime's through the hook registry.
    public let locator: ContainerLocator
    public init(runc: Runc, locator: ContainerLocator) { self.runc = runc; self.locator = locator }

    /// Returns where the checkpoint is: the archive, the image layout or the image directory.
    @discardableResult
    public func checkpoint(_ request: Request, progress: ProgressReporter?) throws -> String {
        let (found, podman) = try locate(request.id)
        guard let state = found else { throw try notRunc(request.id) }
        guard state.status == "running" || state.status == "paused" else {
            throw CheckpointError(.invalidState, "container \(request.id): is \(state.status), not running")
        }
        let packing = request.export != nil || request.exportImage != nil
        if packing && (request.imagePath != nil || request.workPath != nil) {
            throw CheckpointError(.invalidArgument, "--image-path/--work-path and --export/--export-image exclude each other: the archive holds the images")
        }
        if let export = request.export, FileManager.default.fileExists(atPath: export) {
            throw CheckpointError(.busy, "archive \(export): already exists")
        }
        guard packing else {
            let images = request.imagePath ?? FileManager.default.currentDirectoryPath + "/checkpoint"
            try runc.checkpoint(state.id, imagePath: images, workPath: request.workPath ?? images, flags: request.runcFlags)
            if let key = request.signingKey { try ImageDirectorySeal.seal(images, with: key) }
            return images
        }
        try podman?.refuseUnsupported()
        let shm = try podman.flatMap { try holdShm($0, bundle: state.bundle) }
        if let export = request.export {
            return try exportSafely(request, to: export, state: state, podman: podman, shm: shm, progress: progress)
        }
        // --export-image alone: an image layout is a directory, written in place.
        let image = request.exportImage!
        let staging = try makeTemporaryDirectory(in: NSTemporaryDirectory(), prefix: ".ocicheckpoint-\(request.id)")
        let bundle = state.bundle
        do {
            try runc.checkpoint(state.id, imagePath: staging + "/" + CheckpointLayout.images, workPath: staging, flags: request.runcFlags)
        } catch let failure as CheckpointError {
            // The container runs on as it was; only the engine's log is worth keeping.
            let log = CheckpointImage.split(image).layout + ".dump.log"
            try? FileManager.default.removeItem(atPath: log)
            let kept = (try? FileManager.default.moveItem(atPath: staging + "/" + CheckpointLayout.dumpLog, toPath: log)) != nil
            try? FileManager.default.removeItem(atPath: staging)
            let reason = failure.message.replacingOccurrences(of: " (log: \(staging)/dump.log)", with: "")
            throw CheckpointError(failure.code, reason + (kept ? " (log: \(log))" : ""))
        }
        // From here the container may be gone: the staging directory is all that is left of
        // it, so it is kept when packing fails.
        do {
            if let podman {
                try describe(podman, bundle: bundle, shm: shm, into: staging)
            } else {
                try describe(state, bundle: bundle, base: request.rootfsBase, into: staging)
            }
            try CheckpointImage.export(staging, to: image, containerName: podman?.name ?? state.id, runtime: "runc",
                                       rootfsImage: podman.map { ($0.imageName, $0.imageID) }, signingKey: request.signingKey)
        } catch {
            throw CheckpointError(.invalidState, "\(error); the checkpoint of \(request.id) is kept in \(staging)")
        }
        try? FileManager.default.removeItem(atPath: staging)
        return image
    }

    /// Why a container runc does not know cannot be checkpointed here.
    private func notRunc(_ id: String) throws -> CheckpointError {
        let record: ContainerRecord
        do { record = try locator.find(id) } catch let e as ContainerRegistryError {
            return e.checkpointError
        }
        let source = record.source == .registry ? "the hook registry \(locator.registry.directory)" : "\(record.source.rawValue)'s state"
        return CheckpointError(.unsupported, "container \(id): run by \(record.runtime) (found in \(source), init pid \(record.pid)), which has no checkpoint support: checkpoint needs runc (runc --criu); the process tree alone can be dumped with `ocicheckpoint dump -t \(record.pid)`")
    }

    func describe(_ state: Runc.State, bundle: String, base: String?, into staging: String) throws {
        let config = ContainerConfigDump(id: state.id, name: state.id, runtime: "runc", createdTime: state.created,
                                         checkpointedTime: ContainerConfigDump.now(), rootfsBase: base)
        try config.write(to: staging)
        let spec = bundle + "/config.json"
        guard let specData = FileManager.default.contents(atPath: spec) else {
            throw CheckpointError(.notFound, "container \(state.id): no \(spec)")
        }
        try writeFile(staging + "/" + CheckpointLayout.spec, specData)
        let snapshot = try RootfsSnapshot(rootfs: state.rootfs, base: base)
        try TarFile.write(root: state.rootfs, paths: snapshot.changed, to: staging + "/" + CheckpointLayout.rootfsDiff)
        try snapshot.writeDeletedFiles(to: staging + "/" + CheckpointLayout.deletedFiles)
    }
}

func makeTemporaryDirectory(in dir: String, prefix: String) throws -> String {
    var template = Array("\(dir)/\(prefix)-XXXXXX".utf8CString)
    guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
        throw CheckpointError.errno("create a directory in \(dir)")
    }
    return String(cString: template)
}
