import CriuRPC
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// runc's `restore --lazy-pages` sets lazy_pages: the restore then needs the lazy-pages
/// daemon's socket in the work directory (Tests/WorkloadTests/LazyRestoreWorkloadTests
/// restore through it); a dump with lazy_pages is refused in SwrkTests.
@Suite("swrk: lazy_pages at restore")
struct SwrkLazyPagesTests {
    @Test("a lazy_pages restore looks for lazy-pages.socket in the work directory and fails at once without it")
    func restoreNeedsDaemon() throws {
        let scratch = try Scratch("lazy")
        defer { scratch.tearDown() }
        let images = try scratch.directory("images"), work = try scratch.directory("work")
        let imagesFd = try openDirectory(images), workFd = try openDirectory(work)
        defer { close(imagesFd); close(workFd) }
        let swrk = try SwrkProcess(logDir: scratch.path)
        let resp = try swrk.call(request(.restore) {
            $0.imagesDirFd = imagesFd
            $0.workDirFd = workFd
            $0.lazyPages = true
        })
        #expect(!resp.success)
        #expect(resp.crErrmsg.contains("no lazy-pages daemon") && resp.crErrmsg.contains("/work/lazy-pages.socket"), "\(resp.crErrmsg)")
        #expect(swrk.finish() == 1)
    }
}
