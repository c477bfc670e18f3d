import ArgumentParser
import Engine
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
            let log = try logging.log(imagesDir: imagesDir)
            var options = RestoreOptions(imagesDir: imagesDir)
            options.detach = detach
            options.pidfile = pidfile
            options.shellJob = engine.shellJob
            options.fileLocks = engine.fileLocks
            options.tcpEstablished = engine.tcpEstablished
            options.extensions = ContainerState.restoreExtensions()
            let result = try Restorer.restore(options: options, log: log)
            log.info("restore finished: root pid \(result.rootPid)")
            if displayStats {
                print("forking_time_us: \(result.stats.forkingTime)")
                print("restore_time_us: \(result.stats.restoreTime)")
                print("pages_restored: \(result.stats.pagesRestored)")
            }
            if !detach { status = waitForRoot(result.rootPid) }
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
