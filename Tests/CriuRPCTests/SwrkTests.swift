import CriuRPC
import Engine
import LinuxKernel
import Foundation
import Images
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("swrk: CRIU's RPC over the real binary")
struct SwrkTests {
    @Test("VERSION answers 3.17.x and the service exits 0")
    func version() throws {
        let scratch = try Scratch("version")
        defer { scratch.tearDown() }
        let swrk = try SwrkProcess(logDir: scratch.path)
        let resp = try swrk.call(request(.version))
        #expect(resp.type == .version)
        #expect(resp.success)
        #expect(resp.version.majorNumber == 3)
        #expect(resp.version.minorNumber == 17)
        #expect(resp.version.hasSublevel)
        #expect(swrk.finish() == 0)
    }

    @Test("FEATURE_CHECK: mem_track as the kernel has it (userfaultfd WP_ASYNC here), lazy pages where userfaultfd is, never the pidfd store")
    func features() throws {
        let scratch = try Scratch("features")
        defer { scratch.tearDown() }
        let swrk = try SwrkProcess(logDir: scratch.path)
        var req = request(.featureCheck)
        req.features.memTrack = true
        req.features.lazyPages = true
        req.features.pidfdStore = true
        let resp = try swrk.call(req)
        #expect(resp.type == .featureCheck)
        #expect(resp.success)
        #expect(resp.features.hasMemTrack && resp.features.memTrack, "this machine's kernel (6.7+) tracks writes with userfaultfd")
        #expect(resp.features.hasLazyPages && resp.features.lazyPages == (access("/proc/sys/vm/unprivileged_userfaultfd", F_OK) == 0))
        #expect(resp.features.hasPidfdStore && !resp.features.pidfdStore)
        #expect(swrk.finish() == 0)
    }

    @Test("CHECK succeeds iff every required kernel feature is present, naming the missing ones")
    func check() throws {
        let scratch = try Scratch("check")
        defer { scratch.tearDown() }
        let missing = KernelFeatures.probe().filter { $0.required && !$0.present }.map(\.name)
        let swrk = try SwrkProcess(logDir: scratch.path)
        let resp = try swrk.call(request(.check))
        #expect(resp.type == .check)
        #expect(resp.success == missing.isEmpty, "\(resp.crErrmsg)")
        for name in missing { #expect(resp.crErrmsg.contains(name)) }
        #expect(swrk.finish() == (missing.isEmpty ? 0 : 1))
    }

    @Test("keep_open serves the next request on the same process")
    func keepOpen() throws {
        let scratch = try Scratch("keep-open")
        defer { scratch.tearDown() }
        let swrk = try SwrkProcess(logDir: scratch.path)
        var first = request(.version)
        first.keepOpen = true
        #expect(try swrk.call(first).success)
        var second = request(.featureCheck)
        second.features.lazyPages = true
        let features = try swrk.call(second)
        #expect(features.success && features.features.hasLazyPages)
        #expect(swrk.finish() == 0)
    }

    @Test("DUMP then RESTORE of a counting process, with every notification acknowledged")
    func dumpRestore() throws {
        let scratch = try Scratch("dump-restore")
        defer { scratch.tearDown() }
        let work = try scratch.directory("work"), images = try scratch.directory("images")
        let counter = try Counter.build(in: scratch.path)
        let pid = try Counter.start(counter, in: work)
        var restoredPid: pid_t = 0
        defer {
            // Never leave the counter behind, whatever failed.
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
            _ = waitpid(pid, nil, WNOHANG)
            if restoredPid > 1 { kill(restoredPid, SIGKILL) }
        }
        let imagesFd = try openDirectory(images)
        defer { close(imagesFd) }

        // Dump: the images directory is a descriptor of ours (we are the peer).
        let dumper = try SwrkProcess(logDir: scratch.path)
        var stages: [(String, Int32?)] = []
        let dump = try dumper.call(request(.dump) {
            $0.imagesDirFd = imagesFd
            $0.pid = pid
            $0.notifyScripts = true
            $0.logFile = "dump.log"
            $0.logLevel = 4
        }, notifications: &stages)
        let dumpLog = (try? String(contentsOfFile: images + "/dump.log", encoding: .utf8)) ?? "(no dump.log)"
        #expect(dump.type == .dump)
        try #require(dump.success, "dump failed: \(dump.crErrmsg)\n\(dumpLog)")
        #expect(!dump.dump.restored)
        #expect(stages.map(\.0) == ["pre-dump", "network-lock", "post-dump", "network-unlock"])
        #expect(stages.allSatisfy { $0.1 == nil })
        #expect(dumper.finish() == 0)
        #expect(FileManager.default.fileExists(atPath: images + "/inventory.img"))
        #expect(dumpLog.contains("rpc request"), "the request is logged at level 4")

        // Not leave_running: the counter was killed (it is our child: reap it).
        var st: Int32 = 0
        #expect(waitpid(pid, &st, 0) == pid)
        #expect(st & 0x7f == SIGKILL)
        let dumped = Counter.count(in: work) ?? 0
        usleep(100_000)
        #expect(Counter.count(in: work) == dumped, "nothing counts after the dump")

        // Restore over a second service process.
        let restorer = try SwrkProcess(logDir: scratch.path)
        stages = []
        let restore = try restorer.call(request(.restore) {
            $0.imagesDirFd = imagesFd
            $0.notifyScripts = true
            $0.logFile = "restore.log"
            $0.logLevel = 4
        }, notifications: &stages)
        let restoreLog = (try? String(contentsOfFile: images + "/restore.log", encoding: .utf8)) ?? "(no restore.log)"
        #expect(restore.type == .restore)
        try #require(restore.success, "restore failed: \(restore.crErrmsg)\n\(restoreLog)")
        restoredPid = restore.restore.pid
        #expect(restoredPid == pid)
        // CRIU's order (cr-restore.c): post-restore runs before the tasks are resumed.
        #expect(stages.map(\.0) == ["setup-namespaces", "post-setup-namespaces", "post-restore", "pre-resume", "post-resume"])
        let withPid = Dictionary(stages.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        #expect(withPid["setup-namespaces"] == .some(pid))
        #expect(withPid["post-restore"] == .some(pid))
        #expect(withPid["pre-resume"] == .some(nil))
        #expect(restorer.finish() == 0)

        // The restored counter continues from the dumped count.
        #expect(waitFor(10) { (Counter.count(in: work) ?? 0) > dumped + 3 },
                "count stayed at \(Counter.count(in: work) ?? 0) (dumped at \(dumped))")
        #expect(kill(restoredPid, SIGKILL) == 0)
        #expect(waitFor(30) { access("/proc/\(restoredPid)", F_OK) != 0 })
        restoredPid = 0
    }

    @Test("DUMP of a missing pid fails with its pid in cr_errmsg and an errno")
    func missingPid() throws {
        let scratch = try Scratch("missing")
        defer { scratch.tearDown() }
        let images = try scratch.directory("images")
        let imagesFd = try openDirectory(images)
        defer { close(imagesFd) }
        var missing: Int32 = 3_999_999
        while access("/proc/\(missing)", F_OK) == 0 { missing -= 1 }
        let swrk = try SwrkProcess(logDir: scratch.path)
        let resp = try swrk.call(request(.dump) {
            $0.imagesDirFd = imagesFd
            $0.pid = missing
            $0.logFile = "dump.log"
        })
        #expect(resp.type == .dump)
        #expect(!resp.success)
        #expect(resp.crErrmsg.contains("\(missing)"), "\(resp.crErrmsg)")
        #expect(resp.hasCrErrno && resp.crErrno != 0)
        let log = (try? String(contentsOfFile: images + "/dump.log", encoding: .utf8)) ?? ""
        #expect(log.contains(resp.crErrmsg), "the reason is the log's last line too")
        #expect(swrk.finish() == 1)
        #expect(!FileManager.default.fileExists(atPath: images + "/inventory.img"))
    }

    @Test("A refused option (lazy_pages without ps.port to serve them on) fails with the reason, touching nothing")
    func refusedOption() throws {
        let scratch = try Scratch("refused")
        defer { scratch.tearDown() }
        let images = try scratch.directory("images")
        let imagesFd = try openDirectory(images)
        defer { close(imagesFd) }
        let swrk = try SwrkProcess(logDir: scratch.path)
        let resp = try swrk.call(request(.dump) {
            $0.imagesDirFd = imagesFd
            $0.pid = getpid()
            $0.lazyPages = true
        })
        #expect(!resp.success)
        #expect(resp.crErrmsg.contains("lazy_pages: needs ps.port"), "\(resp.crErrmsg)")
        #expect(resp.crErrno != 0)
        #expect(swrk.finish() == 1)
    }

    @Test("A NOTIFY answered with failure aborts the dump; the process keeps running")
    func notifyRefused() throws {
        let scratch = try Scratch("nack")
        defer { scratch.tearDown() }
        let work = try scratch.directory("work"), images = try scratch.directory("images")
        let counter = try Counter.build(in: scratch.path)
        let pid = try Counter.start(counter, in: work)
        defer {
            kill(pid, SIGKILL)
            _ = waitpid(pid, nil, 0)
        }
        let imagesFd = try openDirectory(images)
        defer { close(imagesFd) }
        let swrk = try SwrkProcess(logDir: scratch.path)
        var stages: [(String, Int32?)] = []
        // network-lock comes while the tree is seized: the refusal must release it.
        let resp = try swrk.call(request(.dump) {
            $0.imagesDirFd = imagesFd
            $0.pid = pid
            $0.notifyScripts = true
            $0.logFile = "dump.log"
        }, notifications: &stages, answer: { $0 != "network-lock" })
        #expect(!resp.success)
        #expect(resp.crErrmsg.contains("network-lock"), "\(resp.crErrmsg)")
        #expect(stages.map(\.0).prefix(2) == ["pre-dump", "network-lock"])
        #expect(!stages.map(\.0).contains("post-dump"))
        #expect(swrk.finish() == 1)
        #expect(!FileManager.default.fileExists(atPath: images + "/inventory.img"))

        let status = try #require(processStatus(pid))
        #expect(!status.state.hasPrefix("T") && !status.state.hasPrefix("t"), "state \(status.state)")
        #expect(!status.state.hasPrefix("Z"), "state \(status.state)")
        #expect(status.tracer == "0")
        let before = Counter.count(in: work) ?? 0
        #expect(waitFor(5) { (Counter.count(in: work) ?? 0) > before + 2 }, "the counter keeps counting")
    }
}
