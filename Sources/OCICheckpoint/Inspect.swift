import ArgumentParser
import CheckpointArchive
import CheckpointInspect
import LinuxKernel
import Foundation

/// `inspect DIR`: what checkpointctl's `inspect` shows, for a checkpoint laid out as a
/// directory (podman/CRI-O archive members, or a bare `dump -D` image directory).
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a checkpoint holds: container, sizes, process tree, files, mounts, statistics.")

    @Argument(help: "Checkpoint archive, or a directory (archive members extracted, or a dump's image directory).")
    var checkpoint: String

    @Flag(name: .customLong("ps-tree"), help: "Process tree with each process's command line (read from its dumped memory).")
    var psTree = false

    @Flag(name: .customLong("ps-tree-cmd"), help: "Same as --ps-tree (checkpointctl's name).")
    var psTreeCmd = false

    @Flag(name: .customLong("ps-tree-env"), help: "Process tree with each process's environment.")
    var psTreeEnv = false

    @Flag(name: .customLong("files"), help: "Open files of each process (implies the process tree).")
    var files = false

    @Flag(name: .customLong("mounts"), help: "Mount points of the checkpointed container.")
    var mounts = false

    @Flag(name: .customLong("stats"), help: "Dump statistics (stats-dump).")
    var stats = false

    @Flag(name: .customLong("all"), help: "Everything above.")
    var all = false

    @Option(name: [.customShort("p"), .customLong("pid")], help: "Show only the subtree of this pid.")
    var pid: UInt32?

    @Option(name: .customLong("format"), help: "tree or json.")
    var format: String = "tree"

    var options: InspectOptions {
        get throws {
            var o = all ? InspectOptions.all : InspectOptions()
            if psTree || psTreeCmd { o.psTree = true; o.commandLines = true }
            if psTreeEnv { o.psTree = true; o.environment = true }
            if files { o.psTree = true; o.files = true }
            if mounts { o.mounts = true }
            if stats { o.stats = true }
            if let pid { o.psTree = true; o.pid = pid }
            guard let f = InspectOptions.Format(rawValue: format) else {
                throw CheckpointError(.invalidArgument, "--format \(format): unknown format (tree or json)")
            }
            o.format = f
            return o
        }
    }

    func run() throws {
        try OCICheckpoint_run {
            let options = try options
            var isDirectory: ObjCBool = false
            var report: InspectReport
            if FileManager.default.fileExists(atPath: checkpoint, isDirectory: &isDirectory), !isDirectory.boolValue {
                report = try inspectArchive(options)
                report.signer = try CheckpointArchive.signer(of: checkpoint).description
            } else {
                report = try Inspector(directory: checkpoint).inspect(options)
                report.signer = ImageDirectorySeal.signer(of: checkpoint).description
            }
            print(try Inspector.render([report], format: options.format), terminator: "")
        }
    }

    /// Only the members the report needs are extracted (and verified); sizes come from the listing.
    private func inspectArchive(_ options: InspectOptions) throws -> InspectReport {
        var template = Array((NSTemporaryDirectory() + "ocicheckpoint-inspect-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw CheckpointError.errno("create a temporary directory for inspect")
        }
        let scratch = String(cString: template)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let sizes = Dictionary(try CheckpointArchive.list(checkpoint).map { ($0.name, UInt64($0.size)) }, uniquingKeysWith: +)
        try CheckpointArchive.extract(checkpoint, into: scratch + "/members", where: Inspector.neededMembers(options))
        return try Inspector(directory: scratch + "/members", memberSizes: sizes).inspect(options)
    }
}
