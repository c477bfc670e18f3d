import CShim
import Foundation
import LinuxKernel
import Testing

@Suite struct SyscallTests {
    @Test func rawReturnsTheResult() throws {
        #expect(try Syscall.raw("getpid", SyscallNumber.getpid) == Int(getpid()))
        #expect(Syscall.gettid() > 0)
    }

    @Test func rawThrowsATypedErrno() {
        do {
            try Syscall.raw("close fd -1", SyscallNumber.close, -1)
            Issue.record("close(-1) succeeded")
        } catch let e as CheckpointError {
            #expect(e.errno == .EBADF)
            #expect(e.message == "close fd -1: \(Errno.EBADF.detail)")
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(Syscall.result(SyscallNumber.close, -1) == .failure(.EBADF))
    }

    @Test func retryingThrowsTheLibcErrno() {
        #expect(Syscall.valueOrErrno { close(-1) } == .failure(.EBADF))
        do {
            try Syscall.retrying("close fd -1") { close(-1) }
            Issue.record("close(-1) succeeded")
        } catch let e as CheckpointError {
            #expect(e.errno == .EBADF)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func retryingRetriesEINTROnly() throws {
        var calls = 0
        let r = try Syscall.retrying("interrupted twice") { () -> Int32 in
            calls += 1
            if calls < 3 { errno = EINTR; return -1 }
            return 7
        }
        #expect(r == 7 && calls == 3)

        calls = 0
        #expect(Syscall.valueOrErrno { () -> Int32 in calls += 1; errno = EAGAIN; return -1 } == .failure(.EAGAIN))
        #expect(calls == 1)
    }

    @Test func pipeEndsAreCloseOnExec() throws {
        let ends = try Syscall.pipe("test pipe", flags: O_NONBLOCK)
        defer { ends.forEach { close($0) } }
        #expect(fcntl(ends[0], F_GETFD) & FD_CLOEXEC != 0)
        #expect(fcntl(ends[1], F_GETFL) & O_NONBLOCK != 0)
        #expect(write(ends[1], "x", 1) == 1)
    }

    @Test func takeFdOfOurOwnFd() throws {
        let ends = try Syscall.pipe("test pipe")
        defer { ends.forEach { close($0) } }
        let copy = try Syscall.takeFd(pid: getpid(), fd: ends[1])
        defer { close(copy) }
        #expect(write(copy, "y", 1) == 1)
        var b: UInt8 = 0
        #expect(read(ends[0], &b, 1) == 1 && b == UInt8(ascii: "y"))
    }
}
