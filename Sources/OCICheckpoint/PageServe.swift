import ArgumentParser
import Engine
import Foundation
import LinuxKernel
import Images

/// `page-server`: CRIU's page server, receiving the pages of one dump (ours or CRIU's)
/// into an image directory.
struct PageServe: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "page-server",
        abstract: "Receive the pages of one dump (CRIU's page server protocol) into an image directory.")

    @Option(name: [.customShort("D"), .customLong("images-dir")], help: "Directory for the pagemap and pages images (default: the current directory).")
    var imagesDir: String = "."
    @Option(name: .customLong("port"), help: "TCP port to listen on (0: any free port, logged).")
    var port: UInt16
    @Option(name: .customLong("address"), help: "Address to listen on (default: every address).")
    var address: String?
    @Option(name: .customLong("prev-images-dir"), help: "The previous pre-dump's images, linked as `parent` (relative to the images directory).")
    var prevImagesDir: String?
    @Flag(name: [.customShort("d"), .customLong("daemon")], help: "Return once listening; serve in the background.")
    var daemon = false
    @Option(name: .customLong("pidfile"), help: "With --daemon: write the server's pid here.")
    var pidfile: String?
    @Option(name: .customLong("status-fd"), help: "Write one zero byte to this fd once listening, then close it.")
    var statusFd: Int32?

    @OptionGroup var logging: LogOptions

    func run() throws {
        try OCICheckpoint_run {
            let log = try logging.log(directory: imagesDir)
            let server = try PageServer(images: ImageDirectory(path: imagesDir), address: PageServerAddress(host: address, port: port),
                                        parent: prevImagesDir, log: log)
            log.info("page server listening on \(address ?? "*"):\(server.port)")
            if daemon {
                let child = fork()
                if child < 0 { throw CheckpointError.errno("page server: fork") }
                if child > 0 {
                    if let pidfile { try "\(child)\n".write(toFile: pidfile, atomically: true, encoding: .utf8) }
                    return
                }
                setsid()
                let null = open("/dev/null", O_RDWR)
                for fd in Int32(0)...2 { dup2(null, fd) }
                if null > 2 { close(null) }
            }
            if let statusFd {
                var ready: UInt8 = 0
                if write(statusFd, &ready, 1) != 1 { throw CheckpointError.errno("page server: write --status-fd \(statusFd)") }
                close(statusFd)
            }
            do { try server.serve() } catch {
                log.error("\(error)")
                throw error
            }
        }
    }
}
