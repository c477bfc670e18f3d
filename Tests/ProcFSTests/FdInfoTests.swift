import Foundation
import Testing
@testable import ProcFS

@Suite struct FdInfoTests {
    @Test func parsesCommonLines() throws {
        let info = try FdInfo.parse("pos:\t4096\nflags:\t0100002\nmnt_id:\t24\nino:\t3\n")
        #expect(info.pos == 4096)
        #expect(info.flags == 0o100002)
        #expect(info.mntId == 24 && info.ino == 3)
        #expect(info.fields["flags"] == "0100002")
    }

    @Test func keepsEveryEpollTarget() throws {
        let text = """
        pos:\t0
        flags:\t02000002
        mnt_id:\t17
        ino:\t1044
        tfd:        4 events:       1f data:                4  pos:0 ino:1e1c sdev:f
        tfd:        7 events:       19 data:               2a  pos:0 ino:1e1d sdev:f

        """
        let info = try FdInfo.parse(text)
        #expect(info.flags == 0o2000002)
        #expect(info.values(of: "tfd").count == 2)
        #expect(info.values(of: "tfd")[1].hasPrefix("7 events:"))
        #expect(info.lines.count == 6)
        #expect(info.fields["tfd"]?.hasPrefix("4 events:") == true)
    }

    @Test func missingFlagsThrows() {
        #expect(throws: ProcFSError.self) { try FdInfo.parse("pos:\t0\n") }
    }

    @Test func readsOwnPipe() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        let info = try FdInfo.read(pid: getpid(), fd: ends[1])
        #expect(info.flags & UInt32(O_ACCMODE) == UInt32(O_WRONLY))
        #expect(info.ino > 0)
        #expect(try ProcTree.link("/proc/self/fd/\(ends[1])") == "pipe:[\(info.ino)]")
        #expect(try ProcTree.fds(of: getpid()).contains(ends[0]))
    }
}
