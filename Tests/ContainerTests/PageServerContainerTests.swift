// runc checkpoint --page-server (issue 14, item 2): runc's criu_opts.ps sends the pages to
// our page server, which writes them beside the rest of the images; runc restore reads them
// back and the container's shell counts on from where it stood.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct PageServerContainerTests {
    /// A port on 127.0.0.1 nothing listens on now.
    func freePort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return UInt16(bigEndian: a.sin_port)
    }

    @Test func checkpointThroughOurPageServerThenRestore() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Env.binary), "no engine binary at \(Env.binary)")
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = scratch.newID()
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: countingScript())
        try bundle.run(id: id)
        let c = Runc(id: id)
        try #require(waitFor(10) { bundle.count.count >= 3 }, "the container does not count: \(tail(bundle.path + "/run.err"))")

        let images = try scratch.directory("images"), work = scratch.sub("work")
        let port = freePort()
        let psDir = try scratch.directory("ps")
        let pidfile = psDir + "/pid", log = psDir + "/ps.log"
        let ps = Cmd.run([Env.binary, "page-server", "-D", images, "--address", "127.0.0.1", "--port", "\(port)",
                          "-d", "--pidfile", pidfile, "-o", log, "-v4"], timeout: 30)
        try #require(ps.ok, "page server: \(ps)")
        let serverPid = try #require(readFile(pidfile).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        scratch.onTearDown { if access("/proc/\(serverPid)", F_OK) == 0 { Glibc.kill(serverPid, SIGKILL) } }

        let dump = c.checkpoint(images: images, work: work, extra: ["--page-server", "127.0.0.1:\(port)"])
        try #require(dump.ok, "checkpoint --page-server: \(dump)\n\(tail(work + "/dump.log"))")
        #expect(waitFor(10) { (readFile(log) ?? "").contains("page server: session over") }, "page server log: \(tail(log))")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: images)) ?? []
        #expect(names.contains("pages-65537.img") && !names.contains("pages-1.img"), "images: \(names.sorted())")
        let last = bundle.lastCount

        let restore = c.restore(bundle: bundle.path, images: images, work: scratch.sub("work-restore"))
        try #require(restore.ok, "restore: \(restore)\n\(tail(scratch.sub("work-restore") + "/restore.log"))")
        #expect(c.status == "running")
        #expect(waitFor(10) { bundle.lastCount >= last + 3 }, "no counting after restore")
        #expect(consecutive(bundle.count, from: 1), "count around \(last): \(bundle.count.suffix(12))")
        let (kill, delete, stopped) = c.killAndDelete()
        #expect(kill.ok && stopped && delete.ok, "teardown: \(kill)\n\(delete)")
    }
}
