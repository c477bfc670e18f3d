import ArgumentParser
import CheckpointArchive
import ContainerCheckpoint
import ContainerRegistry
import LinuxKernel
import Foundation

/// runc's global options the container commands share.
struct RuntimeOptions: ParsableArguments {
    @Option(help: "runc's state directory (runc --root).")
    var root: String?

    @Option(help: "The runc binary (default: runc on PATH).")
    var runc: String?

    @Option(help: ArgumentHelp("Registry of containers recorded by `ocicheckpoint hook`.", visibility: .hidden))
    var registry: String = ContainerRegistry.defaultDirectory

    @Option(help: ArgumentHelp("crun's state directory.", visibility: .hidden))
    var crunRoot: String = "/run/crun"

    func make() throws -> Runc { try Runc(path: runc, root: root) }

    var locator: ContainerLocator {
        ContainerLocator(runcRoot: root ?? "/run/runc", crunRoot: crunRoot, registry: ContainerRegistry(directory: registry))
    }
}

/// runc's checkpoint/restore flags that both commands take and pass through to runc.
struct RuncEngineFlags: ParsableArguments {
    @Flag(help: "Checkpoint/restore established TCP connections.") var tcpEstablished = false
    @Flag(name: [.customShort("x"), .long], help: "Allow UNIX sockets connected outside the tree (reconnected by name at restore).") var extUnixSk = false
    @Flag(name: [.customShort("j"), .long], help: "The process tree belongs to a shell job (its session is outside).") var shellJob = false
    @Flag(name: [.customShort("l"), .long], help: "Carry flock, POSIX and OFD file locks (a tree holding one is refused without it).") var fileLocks = false
    @Option(help: "Cgroups mode: soft, full or strict.") var manageCgroupsMode: String?
    @Option(help: "Namespace (network...) to create empty at restore.") var emptyNs: [String] = []

    var runcArguments: [String] {
        var a: [String] = []
        if tcpEstablished { a.append("--tcp-established") }
        if extUnixSk { a.append("--ext-unix-sk") }
        if shellJob { a.append("--shell-job") }
        if fileLocks { a.append("--file-locks") }
        if let m = manageCgroupsMode { a += ["--manage-cgroups-mode", m] }
        for ns in emptyNs { a += ["--empty-ns", ns] }
        return a
    }
}

struct Checkpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Checkpoint a running container through runc, optionally into one archive.")

    @Argument(help: "The container's id.") var id: String
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var engine: RuncEngineFlags

    @Option(help: "Directory for the images (without --export).") var imagePath: String?
    @Option(help: "Directory for logs and stats (without --export).") var workPath: String?
    @Flag(help: "Leave the container running.") var leaveRunning = false
    @Option(help: "Write one checkpoint archive (podman's layout) to FILE.") var export: String?
    @Option(help: "Archive compression: zstd, gzip or none.") var compress: ArchiveCompression = .zstd
    @Option(help: "Archive only the root filesystem's changes against DIR.") var rootfsBase: String?
    @Option(help: "Write the checkpoint as an OCI image layout DIR[:TAG].") var exportImage: String?
    @Option(help: "Sign the archive's (or image's, or without an export the image directory's) manifest with this Ed25519 private key (PEM, openssl genpkey -algorithm ed25519).") var sign: String?

    func run() throws {
        try OCICheckpoint_run {
            // Any run of checkpoint finishes or undoes the --export runs that were killed.
            let journals = runtime.registry + "/checkpoints"
            for line in CheckpointJournal.recoverAbandoned(in: journals) {
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
            var request = ContainerCheckpointer.Request(id: id)
            request.journalDirectory = journals
            request.runcFlags = engine.runcArguments + (leaveRunning ? ["--leave-running"] : [])
            request.imagePath = imagePath.map(absolute)
            request.workPath = workPath.map(absolute)
            request.export = export.map(absolute)
            request.compression = compress
            request.rootfsBase = rootfsBase.map(absolute)
            request.exportImage = exportImage.map(absolute)
            // Read before runc stops anything: a bad key must not cost the container.
            request.signingKey = try sign.map { try SigningKey(file: $0) }
            let at = try ContainerCheckpointer(runc: runtime.make(), locator: runtime.locator).checkpoint(request, progress: ProgressReporter(label: "checkpoint \(id)"))
            print("checkpointed \(id) to \(at)")
        }
    }
}

extension ArchiveCompression: ExpressibleByArgument {}

/// runc chdirs into the bundle: every path it gets must be absolute.
func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}
