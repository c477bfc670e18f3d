import Foundation
import LinuxKernel
import CheckpointArchive
import Images
import OCISpec

/// `ocicheckpoint restore`: unpacks an archive (or an OCI image of one) into a new bundle,
/// rebuilds the root filesystem and config.json, and has runc restore the container with
/// this binary as its engine.
public struct ContainerRestorer {
    public struct Request {
        /// The new container's id.
        public var id: String
        public var runcFlags: [String] = []
        public var bundle: String?
        public var imagePath: String?
        public var workPath: String?
        public var importArchive: String?
        /// DIR or DIR:TAG of an OCI image layout.
        public var importImage: String?
        public var rootfsBase: String?
        /// What an imported archive may ask of this host.
        public var policy = ImportPolicy()
        /// The import (or, without one, the image directory) must be signed by this key.
        public var verifyKey: VerifyingKey?
        public init(id: String) { self.id = id }
    }

    /// Where imported containers get their bundle when none is given.
    public static let bundlesDirectory = "/var/lib/ocicheckpoint/containers"

    public let runc: Runc
    public init(runc: Runc) { self.runc = runc }

    /// Returns what an import says about its signer (nil without an import), so that the
    /// caller can say an unverified signature was not checked.
    @discardableResult
    public func restore(_ request: Request, progress: ProgressReporter?) throws -> Signer? {
        if try runc.state(request.id) != nil {
            throw CheckpointError(.busy, "container \(request.id): the id is already in use (restore under a new one with --name)")
        }
        guard request.importArchive != nil || request.importImage != nil else {
            let bundle = request.bundle ?? FileManager.default.currentDirectoryPath
            let images = request.imagePath ?? bundle + "/checkpoint"
            if let key = request.verifyKey { try ImageDirectorySeal.verify(images, key: key, isImage: ImageName.isImageFile) }
            try runc.restore(request.id, bundle: bundle, imagePath: images, workPath: request.workPath ?? images,
                             flags: request.runcFlags, stdio: (1, 2))
            return nil
        }
        let check: SignatureCheck = request.verifyKey.map { .require($0) } ?? .none
        // Refused before the bundle exists: a wrong signer leaves nothing behind.
        if let key = request.verifyKey {
            if let archive = request.importArchive {
                try CheckpointArchive.verifySignature(of: archive, key: key)
            } else {
                try CheckpointImage.verifySignature(request.importImage!, key: key)
            }
        }
        let bundle = request.bundle ?? Self.bundlesDirectory + "/" + request.id
        if FileManager.default.fileExists(atPath: bundle) {
            throw CheckpointError(.busy, "bundle \(bundle): already exists (pass --bundle DIR for a new one)")
        }
        try FileManager.default.createDirectory(atPath: (bundle as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let signer: Signer
        do {
            if let archive = request.importArchive {
                signer = try CheckpointArchive.unpack(archive, into: bundle, progress: progress, signature: check)
            } else {
                signer = try CheckpointImage.import(request.importImage!, into: bundle, signature: check)
            }
            let source = request.importArchive ?? request.importImage!
            let config = try ContainerConfigDump.read(from: bundle)
            if config.rootfsBase == nil && request.rootfsBase == nil && !config.rootfsImageName.isEmpty {
                throw CheckpointError(.unsupported, "checkpoint of \(config.name): its rootfs-diff.tar holds only the changes against image \(config.rootfsImageName) (restore it with podman container restore --import, or pass --rootfs-base DIR)")
            }
            if let recorded = config.rootfsBase, request.rootfsBase == nil, !request.policy.trustArchive {
                throw CheckpointError(.invalidArgument, "\(source): its rootfs-diff.tar holds only the changes against \(recorded): an archive cannot choose a host directory to copy; pass --rootfs-base DIR (or --trust-archive)")
            }
            try request.policy.check(try Self.spec(in: bundle), archive: source)
            try rebuildRootfs(bundle: bundle, base: request.rootfsBase ?? config.rootfsBase, trusted: request.policy.trustArchive)
            try BundleConfig.write(bundle: bundle, oldID: config.id, newID: request.id)
            try runc.restore(request.id, bundle: bundle, imagePath: bundle + "/" + CheckpointLayout.images, workPath: bundle,
                             flags: request.runcFlags, stdio: (1, 2))
        } catch {
            // Only what this restore made goes: the archive is never touched.
            runc.delete(request.id)
            try? FileManager.default.removeItem(atPath: bundle)
            throw error
        }
        return signer
    }

    private static func spec(in bundle: String) throws -> Spec {
        do { return try Spec.read(path: bundle + "/" + CheckpointLayout.spec) } catch let e as OCISpecError {
            throw CheckpointError(.image, "\(e)")
        }
    }

    private func rebuildRootfs(bundle: String, base: String?, trusted: Bool) throws {
        let rootfs = bundle + "/rootfs"
        if let base {
            guard isDirectory(base) else {
                throw CheckpointError(.notFound, "rootfs base \(base): not a directory (the archive holds only the changes against it)")
            }
            let r = try Subprocess.run(["/bin/cp", "-a", "--reflink=auto", base, rootfs])
            if !r.ok { throw CheckpointError(.invalidState, "copy rootfs base \(base): \(r.reason)") }
        } else {
            try FileManager.default.createDirectory(atPath: rootfs, withIntermediateDirectories: false)
        }
        try TarFile.extract(bundle + "/" + CheckpointLayout.rootfsDiff, into: rootfs, allowDevicesAndSetID: trusted)
        try RootfsSnapshot.applyDeletions(bundle + "/" + CheckpointLayout.deletedFiles, in: rootfs)
    }
}

extension ContainerRestorer {
    /// The id the container had, read from the archive's config.dump alone.
    public static func checkpointedID(in archive: String) throws -> String {
        let dir = try makeTemporaryDirectory(in: NSTemporaryDirectory(), prefix: "ocicheckpoint-config")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try CheckpointArchive.extract(archive, into: dir + "/m") { $0 == CheckpointLayout.config }
        return try ContainerConfigDump.read(from: dir + "/m").id
    }
}
