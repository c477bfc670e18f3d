import ArgumentParser
import Engine
import LinuxKernel
import Foundation

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Dump the process tree rooted at PID into an image directory.")

    @Option(name: [.customShort("t"), .customLong("tree")], help: "PID of the tree's root.")
    var pid: Int32

    @Option(name: [.customShort("D"), .customLong("images-dir")], help: "Directory for the images.")
    var imagesDir: String

    @Flag(name: [.customShort("R"), .customLong("leave-running")], help: "Leave the tree running after the dump.")
    var leaveRunning = false

    @Flag(name: [.customShort("j"), .customLong("shell-job")], help: "The tree belongs to a shell session outside it.")
    var shellJob = false

    @Flag(name: [.customShort("x"), .customLong("ext-unix-sk")], help: "Allow UNIX datagram sockets connected to named peers outside the tree.")
    var extUnixSk = false
    @Flag(name: [.customShort("l"), .customLong("file-locks")], help: "Dump flock, POSIX and OFD file locks (a tree holding one is refused without it).")
    var fileLocks = false
    @Flag(name: .customLong("tcp-established"), help: "Dump established TCP connections (through TCP repair mode).")
    var tcpEstablished = false

    @Option(name: .customLong("freeze-cgroup"), help: "Freeze this cgroup (v1 freezer or v2 directory) while seizing; a cgroup frozen before the dump stays frozen.")
    var freezeCgroup: String?

    @Flag(name: .customLong("display-stats"), help: "Print dump statistics.")
    var displayStats = false

    @OptionGroup var logging: LogOptions

    func run() throws {
        try OCICheckpoint_run {
            // The log may live in the image directory, which a dump creates when missing.
            mkdir(imagesDir, 0o700)
            let log = try logging.log(imagesDir: imagesDir)
            var options = DumpOptions(imagesDir: imagesDir)
            options.leaveRunning = leaveRunning
            options.shellJob = shellJob
            options.extUnixSk = extUnixSk
            options.fileLocks = fileLocks
            options.tcpEstablished = tcpEstablished
            options.extensions = ContainerState.dumpExtensions()
            if let freezeCgroup {
                options.freezeCgroup = freezeCgroup
                options.freezer = try ContainerState.freezer(freezeCgroup)
            }
            let stats = try Dumper.dump(pid: pid, options: options, log: log)
            log.info("dump finished")
            if displayStats {
                print("freezing_time_us: \(stats.freezingTime)")
                print("frozen_time_us: \(stats.frozenTime)")
                print("memdump_time_us: \(stats.memdumpTime)")
                print("pages_scanned: \(stats.pagesScanned)")
                print("pages_written: \(stats.pagesWritten)")
            }
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Report the kernel features the engine relies on.")

    func run() throws {
        let features = KernelFeatures.probe()
        for f in features { print("\(f.present ? "yes" : "NO ") \(f.name): \(f.detail)") }
        if features.contains(where: { !$0.present && $0.required }) { throw ExitCode(1) }
        print("Looks good.")
    }
}
