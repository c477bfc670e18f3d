import Foundation
import LinuxKernel
import ProcFS
import Testing

@Suite("ProcFSError as a CheckpointError")
struct ProcFSErrorTests {
    @Test("a vanished process is not found and keeps its errno; the text stays the same")
    func vanishedProcess() {
        let e = ProcFSError(path: "/proc/999999/stat", reason: "No such file or directory", errno: ENOENT)
        let c = CheckpointError(e)
        #expect(c.message == "/proc/999999/stat: No such file or directory")
        #expect(c.code == .notFound)
        #expect(c.errno == .ENOENT)
    }

    @Test("a file that does not parse carries no errno")
    func badFile() {
        let c = ProcFSError(path: "stat", reason: "bad line: x").checkpointError
        #expect(c.code == .invalidState && c.errno == nil && c.message == "stat: bad line: x")
    }

    @Test("reading a missing /proc file throws the errno, found down a cause chain")
    func readMissing() {
        do {
            _ = try readProcFile("/proc/self/no-such-file")
            Issue.record("read a missing file")
        } catch {
            let wrapped = CheckpointError(.invalidState, "dump pid 1", cause: error)
            #expect(wrapped.firstErrno == .ENOENT)
        }
    }
}
