import LinuxKernel

extension ProcFSError: CheckpointErrorConvertible {
    /// A vanished process (ENOENT, ESRCH) is not found; another failed syscall is the
    /// kernel's; a file that does not read as proc(5) says is an invalid state.
    public var checkpointError: CheckpointError {
        let err = errno.map(Errno.init(rawValue:))
        let code: CheckpointError.Code = err == .ENOENT || err == .ESRCH ? .notFound : err != nil ? .kernel : .invalidState
        return CheckpointError(code, description, errno: err, cause: self)
    }
}
