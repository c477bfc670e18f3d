import ArgumentParser
import CriuRPC
import Engine
import Images
import LinuxKernel
import Foundation

/// CRIU's `pre-dump`: the tree's pages (only those written since --prev-images-dir), with
/// write tracking handed on to the next pre-dump or dump; the tree keeps running.
struct PreDump: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pre-dump",
        abstract: "Save the pages of the tree rooted at PID and track its writes, so a later dump saves only what changed.")

    @Option(name: [.customShort("t"), .customLong("tree")], help: "PID of the tree's root (required).")
    var tree: Int32?

    @Option(name: [.customShort("D"), .customLong("images-dir")], help: "Directory for the images (default: the current directory).")
    var imagesDir: String = "."

    @Option(name: .customLong("freeze-cgroup"), help: "Freeze this cgroup while seizing.")
    var freezeCgroup: String?

    @Flag(name: .customLong("display-stats"), help: "Print pre-dump statistics.")
    var displayStats = false

    @OptionGroup(title: "CRIU's options") var criu: CriuOptions

    @OptionGroup var logging: LogOptions

    func run() throws {
        guard let tree else { throw ValidationError("pre-dump needs -t PID, the root of the tree to pre-dump") }
        if tree <= 0 { throw ValidationError("-t \(tree): a process id is a positive number") }
        try OCICheckpoint_run {
            var opts = CriuOpts()
            opts.pid = tree
            if let freezeCgroup { opts.freezeCgroup = freezeCgroup }
            try criu.apply(to: &opts, root: nil, emptyNs: [])
            try opts.refuseUnsupported()
            mkdir(imagesDir, 0o700)
            let log = try logging.log(directory: criu.workDir ?? imagesDir)
            var options = try opts.dumpOptions(imagesDir: imagesDir)
            options.workDir = criu.workDir
            if let path = options.freezeCgroup { options.freezer = try ContainerState.freezer(path) }
            let stats = try PreDumper.preDump(pid: tree, options: options, log: log)
            log.info("pre-dump finished")
            if displayStats {
                print("frozen_time_us: \(stats.frozenTime)")
                print("pages_written: \(stats.pagesWritten)")
                print("pages_skipped_parent: \(stats.pagesSkippedParent)")
            }
        }
    }
}

/// The process a pre-dump leaves to hold the tree's write tracking (TrackingHolder): not for users.
struct TrackingHolderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: TrackingHolder.command,
        abstract: "Hold a tree's write tracking until its root exits (started by pre-dump).", shouldDisplay: false)

    @Argument(help: "The tree's root.") var root: Int32
    @Argument(help: "How many fds it holds, from fd 3.") var count: Int32

    func run() throws { TrackingHolder.hold(root: root, count: count) }
}
