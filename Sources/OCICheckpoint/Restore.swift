import ArgumentParser
import Engine
import Foundation

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Restore a process tree from an image directory.")

    @Option(name: [.customShort("D"), .customLong("images-dir")], help: "Directory with the images.")
    var imagesDir: String

    @Flag(name: [.customShort("d"), .customLong("restore-detached")], help: "Detach once the tree runs (otherwise wait for its root and exit with its status).")
    var detach = false

    @Option(name: .customLong("pidfile"), help: "Write the root's pid here.")
    var pidfile: String?

    @Flag(name: [.customShort("j"), .customLong("shell-job")], help: "The tree joins this shell's session.")
    var shellJob = false

    @Flag(name: .customLong("tcp-established"), help: "Restore established TCP connections found in the images.")
    var tcpEstablished = false

    @Flag(name: .customLong("display-stats"), help: "Print restore statistics.")
    var displayStats = false

    @OptionGroup var logging: LogOptions

    func run() throws {
        var status: Int32 = 0
        try OCICheckpoint_run {
            let log = try logging.log(imagesDir: imagesDir)
            var options = RestoreOptions(imagesDir: imagesDir)
            options.detach = detach
            options.pidfile = pidfile
            options.shellJob = shellJob
            options.tcpEstablished = tcpEstablished
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
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        if st & 0x7f == 0 { return (st >> 8) & 0xff }
        return 128 + (st & 0x7f)
    }
}
