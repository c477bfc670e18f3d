import ArgumentParser
import CgroupDump
import CheckpointArchive
import CriuRPC
import Engine
import Images
import LinuxKernel
import Foundation

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a process tree from an image directory (-D), or a container through runc (ID, --import).")

    @Option(name: [.customShort("D"), .customLong("images-dir")], help: "Directory with the images.")
    var imagesDir: String?

    @OptionGroup(title: "Containers") var container: ContainerRestoreOptions

    @Flag(name: [.customShort("d"), .customLong("restore-detached")], help: "Detach once the tree runs (otherwise wait for its root and exit with its status).")
    var detach = false

    @Flag(name: [.customShort("S"), .customLong("restore-sibling")], help: "Make the restored root our sibling (our parent's child), not our child.")
    var sibling = false

    @OptionGroup(title: "CRIU's options (with -D; --root then is the restored tree's root)") var criu: CriuOptions

    @Option(name: .customLong("pidfile"), help: "Write the root's pid here.")
    var pidfile: String?

    @OptionGroup(title: "Checkpoint engine") var engine: RuncEngineFlags


    @Flag(name: .customLong("display-stats"), help: "Print restore statistics.")
    var displayStats = false

    @OptionGroup var logging: LogOptions

    func validate() throws {
        if imagesDir != nil && container.wanted { throw ValidationError("-D restores a process tree; a container id or --import restores a container: not both") }
        if imagesDir == nil && !container.wanted { throw ValidationError("give -D DIR (a process tree) or a container id / --import FILE") }
    }

    func run() throws {
        guard let imagesDir else { return try container.run(engine: engine) }
        var status: Int32 = 0
        try OCICheckpoint_run {
            // Before the log or anything else touches the directory or a process is made.
            if let verify = container.verify {
                try ImageDirectorySeal.verify(imagesDir, key: VerifyingKey(file: verify),
                                              excluding: logging.logName(in: imagesDir, workDir: criu.workDir),
                                              isImage: ImageName.isImageFile)
            }
            var opts = CriuOpts()
            opts.shellJob = engine.shellJob
            opts.fileLocks = engine.fileLocks
            opts.tcpEstablished = engine.tcpEstablished
            opts.extUnixSk = engine.extUnixSk
            opts.rstSibling = sibling
            try criu.apply(to: &opts, root: container.runtime.root, emptyNs: engine.emptyNs)
            try opts.refuseUnsupported()
            let log = try logging.log(directory: criu.workDir ?? imagesDir)
            if !opts.ignoredOptions.isEmpty { log.info("accepted, not acted on: \(opts.ignoredOptions.joined(separator: ", "))") }
            var options = try opts.restoreOptions(imagesDir: imagesDir, workDir: criu.workDir)
            options.detach = detach || sibling
            options.pidfile = pidfile
            options.workDir = criu.workDir
            let mode = opts.hasManageCgroupsMode ? try CgroupManageMode(criu: opts.manageCgroupsMode) : .soft
            options.extensions = ContainerState.restoreExtensions(emptyNamespaces: UInt64(opts.emptyNs), cgroupMode: mode)
            let result = try Restorer.restore(options: options, log: log)
            log.info("restore finished: root pid \(result.rootPid)")
            if displayStats {
                print("forking_time_us: \(result.stats.forkingTime)")
                print("restore_time_us: \(result.stats.restoreTime)")
                print("pages_restored: \(result.stats.pagesRestored)")
            }
            if !options.detach { status = waitForRoot(result.rootPid) }
        }
        if status != 0 { throw ExitCode(status) }
    }

    /// CRIU's restore without -d: wait for the root and report how it ended.
    private func waitForRoot(_ pid: Int32) -> Int32 {
        var st: Int32 = 0
        _ = Syscall.valueOrErrno { waitpid(pid, &st, 0) }
        if st & 0x7f == 0 { return (st >> 8) & 0xff }
        return 128 + (st & 0x7f)
    }
}
