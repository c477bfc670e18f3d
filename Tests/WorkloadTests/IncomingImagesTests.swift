// A restore started before its last images are in (`receive` starts runc's restore while
// the source still dumps): it waits for the "incoming" mark to go, and fails in one line,
// creating nothing and changing no image, when the writer gives up or exits first.

import Foundation
import Images
import LinuxKernel
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension CheckpointRestoreTests {
    @Suite("images still incoming")
    struct IncomingImagesTests {
        /// A dump of `threads`, killed: the images a restore will wait for.
        func dumped() async throws -> WorkloadRun {
            try Failures().requireBinary()
            let run = try WorkloadRun(.threads)
            do { try await run.dumpKilled() } catch { run.cleanup(); throw error }
            return run
        }

        var mark: String { ImageDirectory.incomingMark }

        @Test("the mark goes while the restore waits: the workload continues")
        func completedWhileWaiting() async throws {
            let run = try await dumped()
            defer { run.cleanup() }
            let path = run.images + "/" + mark
            try "\(getpid())\n".write(toFile: path, atomically: true, encoding: .utf8)
            let remover = Thread { usleep(300_000); unlink(path) }
            remover.start()
            let r = await run.restore()
            try #require(r.status == 0, "restore failed\n\(run.diagnostics())")
            #expect(run.restoredPid == run.rootPid)
            #expect((Proc.read(run.restoreLog) ?? "").contains("still incoming"), "the restore did not wait")
            await run.expectPass("threads restored once its images were in")
        }

        @Test("the writer gives up, or exits first: one line, nothing created, images untouched",
              arguments: ["gave up", "exited"])
        func writerGone(_ how: String) async throws {
            let run = try await dumped()
            defer { run.cleanup() }
            var writer = getpid()
            var text = "\(writer)\nthe source's final dump failed\n"
            if how == "exited" {
                let child = Process()
                child.executableURL = URL(fileURLWithPath: "/bin/true")
                try child.run()
                child.waitUntilExit()
                writer = child.processIdentifier
                text = "\(writer)\n"
            }
            try text.write(toFile: run.images + "/" + mark, atomically: true, encoding: .utf8)
            let before = run.imageSnapshot()
            let r = await run.restore(timeout: 60)
            Failures().expectOneLineError(r, run)
            let reason = how == "exited" ? "(pid \(writer)) exited before they were in" : "will not come: the source's final dump failed"
            #expect(r.stderr.contains(reason), "stderr: \(r.stderr)")
            #expect(run.imageSnapshot() == before, "restore changed the image dir")
            #expect(kill(run.rootPid, 0) != 0, "pid \(run.rootPid) exists after the failed restore")
        }
    }
}
