#if canImport(Glibc)
import Glibc
#endif

/// A /proc file that could not be read or did not look as proc(5) says.
public struct ProcFSError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let reason: String
    /// Set when a syscall failed, so callers can tell a vanished process (ENOENT, ESRCH)
    /// from a real fault.
    public let errno: Int32?

    public init(path: String, reason: String, errno: Int32? = nil) {
        self.path = path
        self.reason = reason
        self.errno = errno
    }

    static func system(_ path: String, _ code: Int32) -> ProcFSError {
        ProcFSError(path: path, reason: String(cString: strerror(code)), errno: code)
    }

    public var description: String { "\(path): \(reason)" }
}
