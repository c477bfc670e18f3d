import ArgumentParser
import CheckpointArchive
import CriuRPC
import Engine
import Images
import LinuxKernel
import Foundation

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Dump the process tree rooted at PID into an image directory.")

    @Option(name: [.customShort("t"), .customLong("tree")], help: "PID of the tree's root (required).")
    var tree: Int32?
    var pid: Int32 { tree ?? 0 }

    @Option(name: [.customShort("D"), .customLong("images-dir")], help: "Directory for the images (default: the current directory).")
    var imagesDir: String = "."

    @Flag(name: [.customShort("R"), .customLong("leave-running")], help: "Leave the tree running after the dump.")
    var leaveRunning = false

    @Flag(name: [.customShort("s"), .customLong("leave-stopped")], help: "Leave the tree stopped (SIGSTOP) after the dump.")
    var leaveStopped = false

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

    @Option(name: .customLong("root"), help: "The tree's root directory as the dumper sees it.")
    var root: String?

    @Option(name: .customLong("empty-ns"), help: "net: the network namespace is recreated empty at restore.")
    var emptyNs: [String] = []

    @Flag(name: .customLong("display-stats"), help: "Print dump statistics.")
    var displayStats = false

    @Option(name: .customLong("sign"), help: "Write a manifest of the images signed with this Ed25519 private key (PEM), for restore --verify.")
    var sign: String?

    @OptionGroup(title: "CRIU's options") var criu: CriuOptions

    @OptionGroup var logging: LogOptions

    func run() throws {
        // Checked here, not in validate(): ArgumentParser reports an unknown option only
        // after validate() passes, and "Unknown option" must win over a missing -t.
        guard let tree else { throw ValidationError("dump needs -t PID, the root of the tree to dump") }
        if tree <= 0 { throw ValidationError("-t \(tree): a process id is a positive number") }
        try OCICheckpoint_run {
            // Read first: a key that does not load must fail before the tree is touched.
            let signingKey = try sign.map { try SigningKey(file: $0) }
            var opts = CriuOpts()
            opts.pid = pid
            opts.leaveRunning = leaveRunning
            opts.leaveStopped = leaveStopped
            opts.shellJob = shellJob
            opts.extUnixSk = extUnixSk
            opts.fileLocks = fileLocks
            opts.tcpEstablished = tcpEstablished
            if let freezeCgroup { opts.freezeCgroup = freezeCgroup }
            try criu.apply(to: &opts, root: root, emptyNs: emptyNs)
            // --lazy-pages --address --port: this dump serves the lazy pages itself.
            let lazyPages = try criu.lazyPages ? LazyPagesDump(address: criu.lazyPagesAddress()) : nil
            opts.lazyPages = false
            try opts.refuseUnsupported()
            // The log may live in the image directory, which a dump creates when missing.
            mkdir(imagesDir, 0o700)
            let log = try logging.log(directory: criu.workDir ?? imagesDir)
            if !opts.ignoredOptions.isEmpty { log.info("accepted, not acted on: \(opts.ignoredOptions.joined(separator: ", "))") }
            var options = try opts.dumpOptions(imagesDir: imagesDir)
            options.workDir = criu.workDir
            options.lazyPages = lazyPages
            options.extensions = ContainerState.dumpExtensions()
            if let path = options.freezeCgroup { options.freezer = try ContainerState.freezer(path) }
            let stats = try Dumper.dump(pid: pid, options: options, log: log)
            log.info("dump finished")
            if let signingKey {
                try ImageDirectorySeal.seal(imagesDir, with: signingKey, excluding: logging.logName(in: imagesDir, workDir: criu.workDir))
                log.info("images signed by \(signingKey.fingerprint)")
            }
            if displayStats {
                print("freezing_time_us: \(stats.freezingTime)")
                print("frozen_time_us: \(stats.frozenTime)")
                print("memdump_time_us: \(stats.memdumpTime)")
                print("pages_scanned: \(stats.pagesScanned)")
                print("pages_written: \(stats.pagesWritten)")
                print("pages_skipped_parent: \(stats.pagesSkippedParent)")
            }
            try lazyPages?.serve(log: log)
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Report the kernel features the engine relies on, or whether one CRIU feature is supported.")

    @Option(name: .customLong("feature"), help: "A CRIU feature name (as criu check --feature): 'NAME is supported', or exit 1 with the reason. 'list' lists them.")
    var features: [String] = []

    @Flag(name: .customLong("all"), help: "Also report the features only some trees need (CRIU's --all).")
    var all = false

    @Flag(name: .customLong("extra"), help: "Same as --all (CRIU's --extra).")
    var extra = false

    @OptionGroup var logging: LogOptions

    func run() throws {
        if !features.isEmpty {
            var failed = false
            for name in features {
                if name == "list" { print(CriuFeatures.names.joined(separator: " ")); continue }
                guard let answer = CriuFeatures.check(name) else {
                    FileHandle.standardError.write("Error: unknown feature \(name) (known: \(CriuFeatures.names.joined(separator: " ")))\n".data(using: .utf8)!)
                    throw ExitCode(1)
                }
                if answer.supported { print("\(name) is supported") } else {
                    FileHandle.standardError.write("Error: \(name) is not supported: \(answer.reason)\n".data(using: .utf8)!)
                    failed = true
                }
            }
            if failed { throw ExitCode(1) }
            return
        }
        let probed = KernelFeatures.probe()
        for f in probed where f.required || all || extra { print("\(f.present ? "yes" : "NO ") \(f.name): \(f.detail)") }
        if probed.contains(where: { !$0.present && $0.required }) {
            print("Does not look good.")
            throw ExitCode(1)
        }
        if (all || extra) && probed.contains(where: { !$0.present }) {
            print("Looks good but some kernel features are missing\nwhich, depending on your process tree, may cause\ndump or restore failure.")
        } else {
            print("Looks good.")
        }
    }
}
