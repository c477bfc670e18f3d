import ArgumentParser
import CriuRPC
import Engine
import LinuxKernel
import Foundation

/// CRIU's `lazy-pages`: the daemon a `restore --lazy-pages` hands each task's
/// userfaultfd to. It serves faults from the images, copies the rest once the tree runs,
/// and exits when every restored address space has all its pages.
struct LazyPages: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lazy-pages",
        abstract: "Serve the memory of a restore --lazy-pages from the images in -D (or, with --page-server, from a dump --lazy-pages): faults first, the rest in the background.")

    @Option(name: [.customShort("D"), .customLong("images-dir")], help: "Directory with the images.")
    var imagesDir: String

    @Option(name: [.customShort("W"), .customLong("work-dir")], help: "Where lazy-pages.socket and the log go (default: the images directory).")
    var workDir: String?

    @Flag(name: .customLong("page-server"), help: "Take the pages a dump --lazy-pages left out from it, at --address and --port.")
    var pageServer = false

    @Option(name: .customLong("address"), help: "The page server's address (with --page-server).")
    var address: String?

    @Option(name: .customLong("port"), help: "The page server's port (with --page-server).")
    var port: Int?

    @Option(name: .customLong("background-after"), help: .hidden)
    var backgroundAfter: Double = 0

    @Flag(name: .customLong("keeper"), help: .hidden)
    var keeper = false

    @OptionGroup var logging: LogOptions

    func run() throws {
        if keeper { LazyPagesKeeper.keep() }
        try OCICheckpoint_run {
            var remote: PageServerAddress?
            if pageServer {
                guard let port, port > 0, port <= Int(UInt16.max) else {
                    throw CheckpointError(.invalidArgument, "lazy-pages --page-server: needs --port (1-65535), where dump --lazy-pages serves")
                }
                remote = PageServerAddress(host: address, port: UInt16(port))
            }
            let dir = workDir ?? imagesDir
            let log = try logging.log(directory: dir)
            // Listening before the images are read: a restore started while its last images
            // are still coming (`receive`) connects early, and both wait for them.
            let listener = try LazyPagesSocket.listen(directory: dir)
            let path = (dir as NSString).appendingPathComponent(LazyPagesSocket.name)
            defer { close(listener); unlink(path) }
            log.info("lazy pages: listening on \(path)")
            try IncomingImages.wait(imagesDir, log: log)
            let server = try LazyPagesServer(imagesDir: imagesDir, pageServer: remote, log: log)
            server.backgroundDelay = backgroundAfter
            let keeper = try LazyPagesKeeper(imagesDir: imagesDir)
            server.onSpace = { keeper.hold(pid: $0, uffd: $1) }
            let conn = try Syscall.retrying("lazy pages: accept on \(path)") { accept(listener, nil, nil) }
            let socket = RPCSocket(fd: conn)
            defer { close(conn) }
            try server.serve(control: conn) {
                guard let (pid, hostPid, uffd) = try LazyPagesSocket.receive(socket) else { return false }
                try server.add(pid: pid, hostPid: hostPid, uffd: uffd)
                return true
            }
            keeper.finish()
        }
    }
}
