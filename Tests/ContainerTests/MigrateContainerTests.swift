// `ocicheckpoint migrate` / `receive` (issue 14, item 4): two network namespaces joined
// by a veth stand in for two hosts, each with its own runc root; `receive` waits in
// "host B", `migrate` runs in "host A". The container (scripts/migrate-workload.c, in its
// own external network namespace as in TcpContainerTests, and in a copy of it with the
// same address on host B, which the test routes to once moved) keeps its client
// connection across the move: its request counter goes on, it echoes, and it checks all
// of its memory itself.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct MigrateContainerTests {
    static let port: UInt16 = 7000
    static let receivePort = 7100

    @Test func containerMovesWithItsClientConnection() throws {
        let (setup, scratch) = try migrate(lazy: false)
        setup.tearDown()
        scratch.tearDown()
    }

    @Test func containerMovesAndIsRestoredLazily() throws {
        let (setup, scratch) = try migrate(lazy: true)
        defer { setup.tearDown(); scratch.tearDown() }
        // The daemon had every page in and exited; the memory check above read them all.
        let log = scratch.sub("receive") + "/restore/lazy-pages.log"
        #expect(waitFor(20) { (readFile(log) ?? "").contains("lazy pages done") }, "\(tail(log))")
    }

    /// A tree (a shell with a looping child) moves lazily: the daemon serves the pages of
    /// both from the destination's rounds, and the count goes on from where it stood.
    @Test func aTreeMovesAndIsRestoredLazily() throws {
        let scratch = try Scratch()
        let setup = try MigrationSetup(scratch: scratch, args: countingScript(setup: "exec </dev/null >/dev/null 2>&1; (while true; do sleep 1; done) & "))
        defer { setup.tearDown(); scratch.tearDown() }
        try setup.run()
        try #require(waitFor(10) { setup.bundle.count.count >= 3 }, "the container does not count: \(tail(setup.bundle.path + "/run.err"))")
        let receiveWork = scratch.sub("receive")
        try setup.startReceive(bundle: setup.bundleB.path, work: receiveWork, output: scratch.sub("receive.out"))

        let m = setup.migrate(work: scratch.sub("source"), lazy: true)
        try #require(m.ok, "migrate: \(m)\n\(tail(receiveWork + "/restore/restore.log"))")
        let last = setup.bundle.lastCount
        #expect(waitFor(10) { setup.bundleB.lastCount >= last + 3 }, "no counting on host B after \(last)")
        #expect(consecutive(setup.bundleB.count, from: last + 1), "count on host B after \(last): \(setup.bundleB.count.prefix(8))")
        let pid = try #require(setup.pid(setup.rootB))
        let children = (readFile("/proc/\(pid)/task/\(pid)/children") ?? "").split(separator: " ")
        #expect(!children.isEmpty, "the restored shell has no child")
        let log = receiveWork + "/restore/lazy-pages.log"
        #expect(waitFor(20) { (readFile(log) ?? "").contains("lazy pages done") }, "\(tail(log))")
    }

    @Test func unreachableDestinationLeavesTheContainerRunning() throws {
        let scratch = try Scratch()
        let setup = try MigrationSetup(scratch: scratch)
        defer { setup.tearDown(); scratch.tearDown() }
        let client = try setup.start()
        defer { close(client) }
        #expect(line(client, "PING") == "PONG 1")

        // Nothing listens in host B.
        let m = setup.migrate(work: scratch.sub("source"))
        #expect(!m.ok)
        let lines = m.err.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("\(setup.hosts.destination):\(Self.receivePort)") && lines[0].contains("keeps running here"), "\(m)")
        #expect(setup.status(setup.rootA) == "running")
        #expect(line(client, "PING") == "PONG 2")
        #expect(line(client, "still there") == "ECHO still there")
        #expect(line(client, "CHECK")?.hasPrefix("CHECK OK") == true)
    }

    /// A container the dump refuses (a file lock, and migrate does not pass --file-locks)
    /// stays running in host A, and `receive` gives up.
    @Test func refusedDumpLeavesTheContainerRunning() throws {
        let scratch = try Scratch()
        let setup = try MigrationSetup(scratch: scratch, args: ["/bin/locktool", "/tmp/lockfile", "/tmp/posixfile"] + countingScript())
        defer { setup.tearDown(); scratch.tearDown() }
        let cc = Cmd.run([Env.cc, "-static", "-O2", "-o", setup.bundle.rootfs + "/bin/locktool", Env.helpers + "/locktool.c"])
        try #require(cc.ok, "compiling locktool: \(cc)")
        try setup.run()
        try #require(waitFor(10) { setup.bundle.count.count >= 3 }, "the container does not count: \(tail(setup.bundle.path + "/run.err"))")
        let out = scratch.sub("receive.out")
        try setup.startReceive(bundle: setup.bundleB.path, work: scratch.sub("receive"), output: out)

        let m = setup.migrate(work: scratch.sub("source"))
        #expect(!m.ok)
        let lines = m.err.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("final dump") && lines[0].contains("--file-locks")
                && lines[0].contains("keeps running here"), "\(m)")
        #expect(setup.status(setup.rootA) == "running")
        let before = setup.bundle.lastCount
        #expect(waitFor(10) { setup.bundle.lastCount >= before + 2 }, "the container stopped counting after the refused move")
        #expect(waitFor(10) { (readFile(out) ?? "").contains("Error:") }, "receive did not give up: \(readFile(out) ?? "")")
        // B's runc restore started with the final dump and waited for its images: it gave up
        // on the source's reason, and B keeps no container.
        let restoreLog = scratch.sub("receive") + "/restore/restore.log"
        #expect((readFile(restoreLog) ?? "").contains("will not come"), "\(tail(restoreLog))")
        #expect(setup.status(setup.rootB) == nil)
    }

    @Test func failedRestoreOnTheDestinationSaysWhereTheImagesAre() throws {
        let scratch = try Scratch()
        let setup = try MigrationSetup(scratch: scratch)
        defer { setup.tearDown(); scratch.tearDown() }
        let client = try setup.start()
        defer { close(client) }
        // Host B has no bundle: runc restore fails there once the container is stopped here.
        let receiveWork = scratch.sub("receive"), out = scratch.sub("receive.out")
        try setup.startReceive(bundle: scratch.sub("no-bundle"), work: receiveWork, output: out)

        let m = setup.migrate(work: scratch.sub("source"))
        #expect(!m.ok)
        let lines = m.err.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("checkpointed and stopped here, but not restored")
                && lines[0].contains("the images are kept there in \(receiveWork)/") && lines[0].contains(scratch.sub("source")), "\(m)")
        #expect(setup.status(setup.rootA) == nil && setup.status(setup.rootB) == nil)
        // Nothing deleted: the final round on the destination is complete.
        let final = (try? FileManager.default.contentsOfDirectory(atPath: receiveWork))?.compactMap(Int.init).max()
        #expect(final.map { FileManager.default.fileExists(atPath: "\(receiveWork)/\($0)/inventory.img") } == true, "\(String(describing: final))")
        #expect(waitFor(10) { (readFile(out) ?? "").contains("restore failed") }, "receive: \(readFile(out) ?? "")")
    }

    /// Starts the workload in host A, receive in host B, migrates, and checks the state on
    /// the same client connection. Returns what the caller tears down.
    func migrate(lazy: Bool) throws -> (MigrationSetup, Scratch) {
        let scratch = try Scratch()
        let setup = try MigrationSetup(scratch: scratch)
        var handedOver = false
        defer { if !handedOver { setup.tearDown(); scratch.tearDown() } }
        let client = try setup.start()
        defer { close(client) }
        #expect(line(client, "PING") == "PONG 1")
        #expect(line(client, "RESET") == "RESET")

        let receiveWork = scratch.sub("receive"), out = scratch.sub("receive.out")
        try setup.startReceive(bundle: setup.bundleB.path, work: receiveWork, output: out)

        let m = setup.migrate(work: scratch.sub("source"), lazy: lazy)
        try #require(m.ok, "migrate: \(m)\nreceive: \(readFile(out) ?? "")\n\(tail(receiveWork + "/receive.log"))\n\(tail(receiveWork + "/restore/restore.log"))")
        #expect(m.out.contains("migrated \(setup.id)"), "\(m)")
        try setup.netB.takeOver()
        #expect(waitFor(10) { (readFile(out) ?? "").contains("restored from") }, "receive: \(readFile(out) ?? "")")
        #expect(setup.status(setup.rootA) == nil, "runc still knows the container in host A")
        #expect(setup.status(setup.rootB) == "running")
        // At least one pre-copy round, each answered with its pagemaps.
        #expect(FileManager.default.fileExists(atPath: scratch.sub("source") + "/0/pagemap-1.img"), "\(m.out)")

        #expect(line(client, "PING") == "PONG 2", "the connection or the counter did not survive: \(tail(receiveWork + "/restore/restore.log"))")
        #expect(line(client, "after the move") == "ECHO after the move")
        #expect(line(client, "CHECK")?.hasPrefix("CHECK OK") == true)
        let gap = line(client, "GAP").flatMap { Int($0.split(separator: " ").last ?? "") }
        #expect(gap != nil && gap! > 0, "largest gap: \(String(describing: gap))")
        print("migrate\(lazy ? " --lazy-pages" : ""): largest gap \(gap ?? -1) us; \(m.out)")
        handedOver = true
        return (setup, scratch)
    }
}

/// Sends one line and reads the workload's one-line answer (nil on error or timeout).
func line(_ fd: Int32, _ text: String) -> String? {
    let bytes = Array((text + "\n").utf8)
    guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { return nil }
    var got: [UInt8] = []
    var byte: UInt8 = 0
    while recv(fd, &byte, 1, 0) == 1 {
        if byte == 10 { return String(decoding: got, as: UTF8.self) }
        got.append(byte)
    }
    return nil
}
