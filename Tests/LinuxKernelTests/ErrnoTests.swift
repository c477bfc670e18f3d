import Foundation
import LinuxKernel
import Testing

@Suite struct ErrnoTests {
    @Test func namedValuesAreTheKernels() {
        #expect(Errno.EPERM.rawValue == EPERM)
        #expect(Errno.ENOENT.rawValue == ENOENT)
        #expect(Errno.EEXIST.rawValue == EEXIST)
        #expect(Errno.EOPNOTSUPP.rawValue == EOPNOTSUPP)
        #expect(Errno(rawValue: EBUSY) == .EBUSY)
        #expect(Errno.EIO.name == "EIO")
        #expect(Errno(4095).name == nil)
    }

    @Test func describesWithStrerror() {
        #expect(Errno.EEXIST.description == "File exists")
        #expect(Errno.ENOENT.detail == "No such file or directory (errno \(ENOENT))")
        #expect(Errno.describe(EPERM) == "Operation not permitted (errno \(EPERM))")
    }

    @Test func errnoErrorKeepsTheMessageFormat() {
        let e = CheckpointError.errno("open /x", ENOENT)
        #expect(e.message == "open /x: No such file or directory (errno \(ENOENT))")
        #expect(e.errno == .ENOENT)
        #expect(e.code == .kernel)
        #expect(CheckpointError.errno("clone3", .EEXIST).message == "clone3: File exists (errno \(EEXIST))")
    }

    @Test func errorsWithoutErrnoCarryNone() {
        #expect(CheckpointError(.busy, "pid 5 is in use").errno == nil)
        #expect(CheckpointError(.busy, "pid 5 is in use").firstErrno == nil)
    }

    @Test func firstErrnoFollowsTheCauseChain() {
        let inner = CheckpointError.errno("write memory.kmem.limit_in_bytes", .EOPNOTSUPP)
        let middle = CheckpointError(.invalidState, "cgroup knob", cause: inner)
        let outer = CheckpointError(.image, "restore cgroups", cause: middle)
        #expect(outer.errno == nil)
        #expect(outer.firstErrno == .EOPNOTSUPP)
        #expect(CheckpointError(.image, "bad", cause: POSIXError(.EIO)).firstErrno == .EIO)
        #expect(CheckpointError(.image, "bad", cause: Errno.EAGAIN).firstErrno == .EAGAIN)
    }

    @Test func outerErrnoWinsOverTheCauses() {
        let e = CheckpointError(.kernel, "x", errno: .EBUSY, cause: CheckpointError.errno("y", .EIO))
        #expect(e.firstErrno == .EBUSY)
    }

    struct ModuleError: CheckpointErrorConvertible, CustomStringConvertible {
        var description: String { "proc/12/stat: No such process" }
        var checkpointError: CheckpointError { CheckpointError(.notFound, description, errno: .ESRCH, cause: self) }
    }

    @Test func convertsAnyErrorOneWay() {
        let converted = CheckpointError(ModuleError())
        #expect(converted.message == "proc/12/stat: No such process")
        #expect(converted.code == .notFound)
        #expect(converted.errno == .ESRCH)
        #expect(CheckpointError(.image, "wrapped", cause: ModuleError()).firstErrno == .ESRCH)

        let same = CheckpointError.errno("kill", .ESRCH)
        #expect(CheckpointError(same).message == same.message)
        let posix = CheckpointError(POSIXError(.EACCES))
        #expect(posix.errno == .EACCES)
        struct Other: Error {}
        #expect(CheckpointError(Other()).code == .invalidState)
    }
}
