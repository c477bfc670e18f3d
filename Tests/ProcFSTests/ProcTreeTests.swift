import Foundation
import Testing
@testable import ProcFS

@Suite struct ProcTreeTests {
    @Test func listsOwnThreads() throws {
        let threads = try ProcTree.threads(of: getpid())
        #expect(threads.contains(getpid()))
        #expect(threads == threads.sorted())
    }

    @Test func findsAChild() throws {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("30"), nil]
        defer { argv.forEach { free($0) } }
        #expect(posix_spawn(&pid, "/bin/sleep", nil, nil, argv, environ) == 0)
        defer { kill(pid, SIGKILL); var status: Int32 = 0; waitpid(pid, &status, 0) }
        #expect(try ProcTree.children(of: getpid()).contains(pid))
        #expect(try ProcTree.parents()[pid] == getpid())
        #expect(try ProcTree.subtree(of: getpid()).contains(pid))
        #expect(try ProcTree.subtree(of: getpid()).first == getpid())
    }

    @Test func readsProcFilesOfSizeZero() throws {
        var st = stat()
        #expect(stat("/proc/self/status", &st) == 0 && st.st_size == 0)
        #expect(try readProcFile("/proc/self/status").contains("Pid:\t\(getpid())"))
        #expect(throws: ProcFSError.self) { try readProcFile("/proc/self/no-such-file") }
        #expect(throws: ProcFSError.self) { try ProcTree.link("/proc/self/status") }
    }

    @Test func parsesEveryProcessOnThisMachine() throws {
        // processes exit during the sweep; some (PID 1 here) deny ptrace-mode reads even to root
        let skip: [Int32?] = [ENOENT, ESRCH, EACCES]
        for (pid, _) in try ProcTree.parents() {
            do {
                let stat = try TaskStat.read(pid: pid)
                let status = try TaskStatus.read(pid: pid)
                #expect(stat.pid == pid && status.pid == pid)
                _ = try ProcMaps.read(pid: pid)
                for fd in try ProcTree.fds(of: pid) { _ = try FdInfo.read(pid: pid, fd: fd) }
            } catch let error as ProcFSError where skip.contains(error.errno) {
                continue
            }
        }
    }
}
