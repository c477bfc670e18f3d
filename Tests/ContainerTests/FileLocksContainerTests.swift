// runc's --file-locks through CRIU's RPC (file_locks): a busybox container whose shell holds
// a flock and a POSIX lock (taken by Helpers/locktool before it execs the shell) is refused
// without it and keeps running; with it, the restored container holds both locks again.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct FileLocksContainerTests {
    /// Pids of the /proc/locks entries of `kind` (FLOCK, POSIX) on `file`.
    func holders(_ kind: String, _ file: String) -> [Int32] {
        var st = stat()
        guard stat(file, &st) == 0 else { return [] }
        return (readFile("/proc/locks") ?? "").split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count >= 6, f[1] == kind, f[5].hasSuffix(":\(st.st_ino)") else { return nil }
            return Int32(f[4])
        }
    }

    @Test func flockHeldAcrossCheckpointAndRestoreWithFileLocks() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Env.binary), "no engine binary at \(Env.binary)")
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = scratch.newID()
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: ["/bin/locktool", "/tmp/lockfile", "/tmp/posixfile"] + countingScript())
        let cc = Cmd.run([Env.cc, "-static", "-O2", "-o", bundle.rootfs + "/bin/locktool", Env.helpers + "/locktool.c"])
        try #require(cc.ok, "compiling locktool: \(cc)")
        try bundle.run(id: id)
        let c = Runc(id: id)
        try #require(waitFor(10) { bundle.count.count >= 3 }, "the container does not count: \(tail(bundle.path + "/run.err"))")
        let lockfile = bundle.rootfs + "/tmp/lockfile", posixfile = bundle.rootfs + "/tmp/posixfile"
        func flockHolders(_ f: String) -> [Int32] { holders("FLOCK", f) }
        let pid = try #require(c.pid)
        #expect(flockHolders(lockfile) == [pid] && holders("POSIX", posixfile) == [pid])

        let refusedWork = scratch.sub("work-refused")
        let refused = c.checkpoint(images: scratch.sub("images-refused"), work: refusedWork)
        #expect(!refused.ok, "checkpoint without --file-locks succeeded: \(refused)")
        #expect((readFile(refusedWork + "/dump.log") ?? "").contains("--file-locks"), "dump.log: \(tail(refusedWork + "/dump.log"))")
        #expect(c.status == "running")
        let before = bundle.lastCount
        #expect(waitFor(10) { bundle.lastCount >= before + 2 }, "the container stopped counting after the refused checkpoint")

        let images = scratch.sub("images"), work = scratch.sub("work")
        let dump = c.checkpoint(images: images, work: work, extra: ["--file-locks"])
        try #require(dump.ok, "checkpoint --file-locks: \(dump)\n\(tail(work + "/dump.log"))")
        #expect(waitFor(5) { flockHolders(lockfile).isEmpty }, "the lock outlived the checkpointed container")
        let last = bundle.lastCount

        let rwork = scratch.sub("work-restore")
        let restore = Cmd.run([Env.runc, "--criu", Env.binary, "restore", "-d", "--file-locks", "--bundle", bundle.path,
                               "--image-path", images, "--work-path", rwork, id], timeout: 60)
        try #require(restore.ok, "restore --file-locks: \(restore)\n\(tail(rwork + "/restore.log"))")
        #expect(c.status == "running")
        let restored = try #require(c.pid)
        #expect(flockHolders(lockfile) == [restored], "FLOCK holders \(flockHolders(lockfile)), restored init \(restored)")
        #expect(holders("POSIX", posixfile) == [restored], "POSIX holders \(holders("POSIX", posixfile)), restored init \(restored)")
        #expect(waitFor(10) { bundle.lastCount >= last + 3 }, "no counting after restore")
        #expect(consecutive(bundle.count, from: 1), "count around \(last): \(bundle.count.suffix(12))")
        let (kill, delete, stopped) = c.killAndDelete()
        #expect(kill.ok && stopped && delete.ok, "teardown: \(kill)\n\(delete)")
    }
}
