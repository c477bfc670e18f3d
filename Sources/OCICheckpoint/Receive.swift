import ArgumentParser
import ContainerCheckpoint
import CriuRPC
import Engine
import Foundation
import Images
import LinuxKernel

/// `receive`: the destination of one `migrate`. Waits for the source, takes each pre-copy
/// round's pages with an in-process page server, then the final dump's other images, and
/// restores the container through runc (`--tcp-established`, `--lazy-pages` when the
/// source asks), answering the source in one line.
struct Receive: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive one container migrated by `ocicheckpoint migrate` and restore it through runc.")

    @Option(help: "IPv4 ADDRESS:PORT to wait for the source on (the page servers listen on the same address).")
    var listen: String
    @Option(help: "The container's bundle on this host.") var bundle: String
    @Option(help: "runc's state directory (runc --root).") var root: String?
    @Option(help: "The runc binary (default: runc on PATH).") var runc: String?
    @Option(help: "The restored container's id.") var id: String
    @Option(help: "Where the images and logs go (kept afterwards; default /var/lib/ocicheckpoint/received/ID-TIME).")
    var work: String?
    @OptionGroup var logging: LogOptions

    func run() throws {
        try OCICheckpoint_run {
            let address = try MigrationAddress(listen)
            let work = absolute(work ?? "/var/lib/ocicheckpoint/received/\(id)-\(Int(Date().timeIntervalSince1970))")
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            guard ((try? FileManager.default.contentsOfDirectory(atPath: work)) ?? []).isEmpty else {
                throw CheckpointError(.invalidState, "receive: \(work) is not empty (images of an earlier migration?)")
            }
            let log = try logging.log(directory: work)
            let destination = MigrationDestination(runc: try Runc(path: runc, root: root), id: id, bundle: absolute(bundle),
                                                   work: work, host: address.host, log: log)
            let (listener, port) = try MigrationChannel.listen(address)
            defer { close(listener) }
            print("receive: listening on \(address.host):\(port)")
            fflush(stdout)
            let channel = try MigrationChannel.accept(listener, what: "the source")
            let summary = try destination.receive(channel)
            print(summary)
        }
    }
}

/// One migration's destination: round directories 0, 1, ... under `work`, each linked to
/// the one before as `parent`, the last one holding the final dump.
final class MigrationDestination {
    let runc: Runc
    let id: String
    let bundle: String
    let work: String
    /// The address the page servers listen on (the one the source reached us at).
    let host: String
    let log: Log

    init(runc: Runc, id: String, bundle: String, work: String, host: String, log: Log) {
        self.runc = runc; self.id = id; self.bundle = bundle; self.work = work; self.host = host; self.log = log
    }

    func receive(_ channel: MigrationChannel) throws -> String {
        let hello = try channel.expect("MIGRATE")
        guard hello.count == 3, hello[1] == String(MigrationChannel.version), ["0", "1"].contains(hello[2]) else {
            try? channel.send("FAILED the destination speaks migration protocol \(MigrationChannel.version), not \"\(hello.dropFirst().joined(separator: " "))\"")
            throw CheckpointError(.unsupported, "receive: the source speaks \"\(hello.joined(separator: " "))\", not protocol \(MigrationChannel.version)")
        }
        let lazy = hello[2] == "1"
        try channel.send("READY \(MigrationChannel.version)")
        var round = 0
        while true {
            let words = try channel.receive(expecting: "ROUND or FINAL")
            guard words.count == 2, ["ROUND", "FINAL"].contains(words[0]), words[1] == String(round) else {
                throw CheckpointError(.invalidState, "receive: \"\(words.joined(separator: " "))\" where round \(round) was due")
            }
            let dir = dir(round)
            guard words[0] == "FINAL" else {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
                try endPages(try startPages(into: dir, round: round, channel: channel), round: round, channel: channel)
                let pagemaps = ImageDirectory(path: dir).list(.pagemap).map(\.fileName)
                try channel.sendFiles(pagemaps, from: dir)
                round += 1
                continue
            }
            return try final(into: dir, round: round, lazy: lazy, channel: channel)
        }
    }

    /// The final round: runc's restore starts as soon as the source's runc has begun the
    /// final dump (its descriptors.json arrives first), and waits, with the lazy-pages
    /// daemon, for the directory's last images (IncomingImages): runc's own start, the
    /// engine's and the daemon's overlap the source's frozen window instead of following it.
    private func final(into dir: String, round: Int, lazy: Bool, channel: MigrationChannel) throws -> String {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        try IncomingImages.mark(dir)
        var restoring: BackgroundWork<Void>?
        let complete: DispatchTime
        do {
            let pages = try startPages(into: dir, round: round, channel: channel)
            // Without descriptors.json (runc reads it first) the restore waits for the rest.
            if try channel.receiveFiles(into: dir).contains(ImageDirectory.runcDescriptors) { restoring = try restore(dir, lazy: lazy) }
            try endPages(pages, round: round, channel: channel)
            let names = try channel.receiveFiles(into: dir)
            log.info("round \(round): \(names.count) images of the final dump received")
            complete = DispatchTime.now()
            IncomingImages.complete(dir)
        } catch {
            // The waiting restore fails on this reason, and runc removes what it made.
            IncomingImages.abandon(dir, reason: CheckpointError(error).message)
            _ = try? restoring?.wait()
            throw error
        }
        do { try (restoring ?? restore(dir, lazy: lazy)).wait() } catch {
            let line = "the destination's restore failed: \(CheckpointError(error).message); the images are kept there in \(dir)"
            try? channel.send("FAILED " + line)
            throw CheckpointError(.invalidState, "receive: " + line)
        }
        let ms = Int((DispatchTime.now().uptimeNanoseconds - complete.uptimeNanoseconds) / 1_000_000)
        try channel.send("RESTORED \(ms)")
        return "receive: \(id) restored from \(dir) in \(ms) ms after its images were in, after \(round) pre-copy round(s)"
    }

    /// A page server for round `round` while the source dumps into it, its port sent.
    private func startPages(into dir: String, round: Int, channel: MigrationChannel) throws -> BackgroundWork<Void> {
        let server = try PageServer(images: ImageDirectory(path: dir), address: PageServerAddress(host: host, port: 0),
                                    parent: round > 0 ? "../\(round - 1)" : nil, log: log)
        // It blocks in accept: a source that fails before connecting sends ABORT instead
        // of DUMPED, and `receive` ends with the server still waiting.
        let serving = BackgroundWork { try server.serve() }
        try channel.send("PAGES \(server.port)")
        return serving
    }

    /// Once the source says it dumped: the round's pages are on disk when this returns.
    private func endPages(_ serving: BackgroundWork<Void>, round: Int, channel: MigrationChannel) throws {
        _ = try channel.expect("DUMPED")
        guard serving.ended(within: 60) else {
            throw CheckpointError(.timeout, "receive: round \(round): the source says it dumped, but its pages did not arrive within 60 s")
        }
        do { try serving.wait() } catch {
            throw CheckpointError(.invalidState, "receive: round \(round)'s page server: \(CheckpointError(error).message)", cause: error)
        }
        log.info("round \(round): pages in \(dir(round))")
    }

    private func dir(_ round: Int) -> String { (work as NSString).appendingPathComponent(String(round)) }

    /// runc restore of the final images (with a lazy-pages daemon serving them when
    /// `lazy`), on a thread: both wait for the images (IncomingImages).
    private func restore(_ dir: String, lazy: Bool) throws -> BackgroundWork<Void> {
        let restoreWork = (work as NSString).appendingPathComponent("restore")
        try FileManager.default.createDirectory(atPath: restoreWork, withIntermediateDirectories: true)
        var flags = ["--tcp-established"]
        if lazy {
            try startLazyPages(images: dir, work: restoreWork)
            flags.append("--lazy-pages")
        }
        return BackgroundWork { [self] in
            try runc.restore(id, bundle: bundle, imagePath: dir, workPath: restoreWork, flags: flags, stdio: nil)
        }
    }

    /// `lazy-pages -D DIR` in a session of its own: it outlives us, serving the restored
    /// container from the round directories until every page is in.
    private func startLazyPages(images: String, work: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd in Int32(0)...2 { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
        let argv = [Runc.selfPath, "lazy-pages", "-D", images, "-W", work, "-o", "lazy-pages.log", "-v4"]
        let pid = try CleanSpawn.start(argv, actions: &actions, grouping: .session, what: "start lazy-pages")
        let socket = (work as NSString).appendingPathComponent(LazyPagesSocket.name)
        for _ in 0..<5000 {
            if access(socket, F_OK) == 0 { return }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                throw CheckpointError(.invalidState, "lazy-pages exited before listening (log: \(work)/lazy-pages.log)")
            }
            usleep(2_000)
        }
        throw CheckpointError(.timeout, "lazy-pages did not listen within 10 s (log: \(work)/lazy-pages.log)")
    }
}
