import ArgumentParser
import CheckpointArchive
import ContainerCheckpoint
import LinuxKernel
import Foundation

/// `restore` of a container (runc's restore, plus --import of an archive): chosen when a
/// container id or an import is given instead of CRIU's -D.
struct ContainerRestoreOptions: ParsableArguments {
    @Argument(help: "The container to restore (runc's restore ID); with an import, the new container's id.")
    var id: String?
    @Option(help: "Restore from a checkpoint archive.") var `import`: String?
    @Option(help: "Restore from an OCI image layout DIR[:TAG] made by --export-image.") var importImage: String?
    @Option(help: "The restored container's id (default: the ID argument, else the checkpointed id).") var name: String?
    @Option(name: [.customShort("b"), .customLong("bundle")], help: "The bundle directory (created for an import).") var bundle: String?
    @Option(help: "Directory with the images (without --import).") var imagePath: String?
    @Option(help: "Directory for logs (without --import).") var workPath: String?
    @Option(help: "The base the archive's root filesystem changes apply to.") var rootfsBase: String?
    @Option(help: "runc: write the restored container's pid here.") var pidFile: String?
    @Option(help: "runc: AF_UNIX socket that receives the new console's master.") var consoleSocket: String?
    @Flag(help: "runc: do not use pivot_root for the restored root.") var noPivot = false
    @Flag(help: "runc: do not make runc a subreaper of the restored process.") var noSubreaper = false
    @Flag(help: "Trust the imported archive: keep its hooks, privileges, devices, setuid files and recorded rootfs base.") var trustArchive = false
    @Option(help: "A host path the imported archive's bind mounts may use (repeat for each).") var allowBind: [String] = []
    @Option(help: "Refuse an archive, image or image directory whose manifest is not signed by this Ed25519 public key (PEM, openssl pkey -pubout).") var verify: String?
    @OptionGroup var runtime: RuntimeOptions

    /// runc's own restore flags, passed through.
    private var runcFlags: [String] {
        var a: [String] = []
        if let pidFile { a += ["--pid-file", absolute(pidFile)] }
        if let consoleSocket { a += ["--console-socket", absolute(consoleSocket)] }
        if noPivot { a.append("--no-pivot") }
        if noSubreaper { a.append("--no-subreaper") }
        return a
    }

    var wanted: Bool { id != nil || `import` != nil || importImage != nil }

    func run(engine: RuncEngineFlags) throws {
        try OCICheckpoint_run {
            let key = try verify.map { try VerifyingKey(file: $0) }
            var newID = name ?? id
            if newID == nil, let archive = `import` {
                // Not even config.dump is read out of an archive before its signer is known.
                if let key { try CheckpointArchive.verifySignature(of: absolute(archive), key: key) }
                newID = try ContainerRestorer.checkpointedID(in: archive)
            }
            guard let newID else {
                throw CheckpointError(.invalidArgument, "restore: give the container id (or --name) to restore an image")
            }
            var request = ContainerRestorer.Request(id: newID)
            request.runcFlags = engine.runcArguments + runcFlags
            request.bundle = bundle.map(absolute)
            request.imagePath = imagePath.map(absolute)
            request.workPath = workPath.map(absolute)
            request.importArchive = `import`.map(absolute)
            request.importImage = importImage.map(absolute)
            request.rootfsBase = rootfsBase.map(absolute)
            request.policy = ImportPolicy(trustArchive: trustArchive, allowedBindSources: Set(allowBind))
            request.verifyKey = key
            let signer = try ContainerRestorer(runc: runtime.make()).restore(request, progress: ProgressReporter(label: "restore \(newID)"))
            var note = ""
            if let key { note = " (signature verified: \(key.fingerprint))" }
            else if case let .signed(fingerprint)? = signer { note = " (signed by \(fingerprint), not verified: no --verify)" }
            FileHandle.standardError.write("restored container \(newID)\(note)\n".data(using: .utf8)!)
        }
    }
}
