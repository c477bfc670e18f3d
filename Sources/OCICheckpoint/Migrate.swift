import ArgumentParser
import CheckpointArchive
import ContainerCheckpoint
import Foundation
import Images
import LinuxKernel

/// `migrate`: moves a runc container to the host where `receive` waits. Pre-copy rounds
/// (`runc checkpoint --pre-dump --page-server`) while the container runs, until a round's
/// page count stops shrinking or --rounds; then the final dump (which stops the container
/// here), its images sent over the control connection, and the destination's answer.
struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move a runc container to the host where `ocicheckpoint receive` waits (pre-copy, final dump, restore there).")

    @Argument(help: "The container's id.") var id: String
    @Option(help: "The destination's `receive --listen` IPv4 ADDRESS:PORT.") var to: String
    @Option(help: "runc's state directory (runc --root).") var root: String?
    @Option(help: "The runc binary (default: runc on PATH).") var runc: String?
    @Option(help: "At most this many pre-copy rounds (0: the final dump carries every page).") var rounds: Int = 4
    @Option(help: "Where this side's images and logs go (kept; default /var/lib/ocicheckpoint/migrations/ID-TIME).")
    var work: String?
    @Flag(help: "Restore on the destination with a lazy-pages daemon: the container runs before all its pages are in.")
    var lazyPages = false

    func run() throws {
        try OCICheckpoint_run {
            guard rounds >= 0 else { throw CheckpointError(.invalidArgument, "--rounds \(rounds): a count of rounds is 0 or more") }
            let destination = try MigrationAddress(to)
            let runc = try Runc(path: runc, root: root)
            guard try runc.state(id)?.status == "running" else {
                throw CheckpointError(.invalidState, "migrate \(id): no running container of that id\(root.map { " in \($0)" } ?? "")")
            }
            let work = absolute(work ?? "/var/lib/ocicheckpoint/migrations/\(id)-\(Int(Date().timeIntervalSince1970))")
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            let source = MigrationSource(runc: runc, id: id, destination: destination, work: work, maxRounds: rounds)
            let channel: MigrationChannel
            do { channel = try MigrationChannel.connect(destination) } catch {
                throw CheckpointError(.invalidState, "migrate \(id): \(CheckpointError(error).message); the container keeps running here")
            }
            print(try source.migrate(over: channel, lazy: lazyPages))
        }
    }
}

/// The source side of one migration: round directories 0, 1, ... under `work` (each
/// holding the pagemaps the destination wrote, which the next round's write tracking
/// builds on), the last one the final dump's images.
final class MigrationSource {
    let runc: Runc
    let id: String
    let destination: MigrationAddress
    let work: String
    let maxRounds: Int
    /// Images of the final dump the destination has before the rest (descriptors.json).
    private var sentEarly: Set<String> = []

    init(runc: Runc, id: String, destination: MigrationAddress, work: String, maxRounds: Int) {
        self.runc = runc; self.id = id; self.destination = destination; self.work = work; self.maxRounds = maxRounds
    }

    private func dir(_ round: Int) -> String { (work as NSString).appendingPathComponent(String(round)) }
    private func log(_ round: Int) -> String { (work as NSString).appendingPathComponent("work-\(round)") }

    func migrate(over channel: MigrationChannel, lazy: Bool) throws -> String {
        var written: [UInt64] = [], frozenMs: [UInt64] = []
        do {
            try channel.send("MIGRATE \(MigrationChannel.version) \(lazy ? 1 : 0)")
            _ = try channel.expect("READY")
            while written.count < maxRounds {
                let round = try preCopy(round: written.count, over: channel)
                written.append(round.pagesWritten)
                frozenMs.append((UInt64(round.freezingTime) + UInt64(round.frozenTime)) / 1000)
                if written.count >= 2 && written[written.count - 1] >= written[written.count - 2] { break }
            }
        } catch {
            try? channel.send("ABORT the source stopped: \(CheckpointError(error).message)")
            throw CheckpointError(.invalidState, "migrate \(id): \(CheckpointError(error).message); the container keeps running here")
        }
        let final = written.count
        let start = DispatchTime.now()
        let checkpoint = try finalDump(round: final, over: channel)
        let dumped = DispatchTime.now()
        // From here on the container is stopped here: every failure says where the images are.
        let answer: [String]
        do {
            let images = try FileManager.default.contentsOfDirectory(atPath: dir(final)).filter { name in
                var st = stat()
                guard !sentEarly.contains(name) else { return false }
                return lstat((dir(final) as NSString).appendingPathComponent(name), &st) == 0 && st.st_mode & S_IFMT == S_IFREG
            }.sorted()
            try channel.sendFiles(images, from: dir(final))
            answer = try channel.expect("RESTORED")
        } catch {
            _ = try? checkpoint.wait()
            throw CheckpointError(.invalidState, "migrate \(id): the container was checkpointed and stopped here, but not restored: \(CheckpointError(error).message); "
                                  + "this side keeps its images in \(dir(final)) (the pages are on the destination)")
        }
        do { try checkpoint.wait() } catch {
            throw CheckpointError(.invalidState, "migrate \(id): restored on the destination, but runc's checkpoint here ended with: \(CheckpointError(error).message)")
        }
        let total = (DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1_000_000
        let stats = (try? ImageDirectory(path: dir(final)).readOne(.statsDump, as: StatsEntry.self).dump) ?? DumpStatsEntry()
        let frozen = (UInt64(stats.freezingTime) + UInt64(stats.frozenTime)) / 1000
        let rounds = written.isEmpty ? "" : " (pages written: \(written.map(String.init).joined(separator: ", ")); frozen ms: \(frozenMs.map(String.init).joined(separator: ", ")))"
        return "migrated \(id) to \(destination): \(final) pre-copy round(s)\(rounds), "
            + "final dump \(stats.pagesWritten) pages, frozen \(frozen) ms; final checkpoint \((dumped.uptimeNanoseconds - start.uptimeNanoseconds) / 1_000_000) ms, "
            + "restored on the destination in \(answer.dropFirst().joined(separator: " ")) ms; final checkpoint start to restored \(total) ms"
    }

    /// One pre-copy round: the container runs on; the destination's pagemaps come back
    /// here so the next round leaves unwritten pages in them. Returns the round's stats.
    private func preCopy(round: Int, over channel: MigrationChannel) throws -> DumpStatsEntry {
        try channel.send("ROUND \(round)")
        let port = try pagesPort(channel)
        var flags = ["--pre-dump", "--page-server", "\(destination.host):\(port)"]
        if round > 0 { flags += ["--parent-path", "../\(round - 1)"] }
        try checkpoint(round: round, flags: flags)
        try channel.send("DUMPED \(round)")
        try channel.receiveFiles(into: dir(round))
        return try ImageDirectory(path: dir(round)).readOne(.statsDump, as: StatsEntry.self).dump
    }

    /// The final dump, which stops the container here (runc kills it once dumped); a
    /// failure before that leaves it running, and says so. Returns once the engine is past
    /// the point of no return (the work directory's stats-dump, written after post-dump),
    /// while runc still kills the container and reaps it: the destination restores meanwhile.
    private func finalDump(round: Int, over channel: MigrationChannel) throws -> BackgroundWork<Void> {
        do {
            try channel.send("FINAL \(round)")
            let port = try pagesPort(channel)
            var flags = ["--tcp-established", "--page-server", "\(destination.host):\(port)"]
            if round > 0 { flags += ["--parent-path", "../\(round - 1)"] }
            let running = BackgroundWork { try self.checkpoint(round: round, flags: flags) }
            // runc writes descriptors.json before it starts the engine (whose log appears
            // then): with it the destination starts runc's restore while this side dumps.
            let started = (log(round) as NSString).appendingPathComponent(CheckpointLayout.dumpLog)
            if !running.waitUntil({ access(started, F_OK) == 0 }) { try running.wait() }
            let path = (dir(round) as NSString).appendingPathComponent(ImageDirectory.runcDescriptors)
            sentEarly = access(path, F_OK) == 0 ? [ImageDirectory.runcDescriptors] : []
            try channel.sendFiles(Array(sentEarly), from: dir(round))
            let marker = (log(round) as NSString).appendingPathComponent(ImageName.statsDump.fileName)
            if !running.waitUntil({ access(marker, F_OK) == 0 }) { try running.wait() }
            try channel.send("DUMPED \(round)")
            return running
        } catch {
            try? channel.send("ABORT the source's final dump failed: \(CheckpointError(error).message)")
            let status = (try? runc.state(id))?.status ?? "gone"
            let fate = status == "running" ? "the container keeps running here" : "the container is \(status) here; its images are kept in \(dir(round))"
            throw CheckpointError(.invalidState, "migrate \(id): final dump: \(CheckpointError(error).message); \(fate)")
        }
    }

    /// runc checkpoint into round `round`; its failure names the engine's own reason (the
    /// last error of dump.log), not runc's "criu failed: type NOTIFY".
    private func checkpoint(round: Int, flags: [String]) throws {
        do { try runc.checkpoint(id, imagePath: dir(round), workPath: log(round), flags: flags) } catch {
            let path = (log(round) as NSString).appendingPathComponent(CheckpointLayout.dumpLog)
            let reason = (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n")
                .last { $0.contains("Error: ") }.map { String($0[$0.range(of: "Error: ")!.upperBound...]) }
            guard let reason else { throw error }
            throw CheckpointError(.invalidState, "runc checkpoint: \(reason) (log: \(path))", cause: error)
        }
    }

    private func pagesPort(_ channel: MigrationChannel) throws -> UInt16 {
        let words = try channel.expect("PAGES")
        guard words.count == 2, let port = UInt16(words[1]) else {
            throw CheckpointError(.invalidArgument, "\(channel.peer) sent \"\(words.joined(separator: " "))\" for its page server's port")
        }
        return port
    }
}
