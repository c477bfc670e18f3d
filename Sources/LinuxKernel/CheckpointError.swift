import Foundation

/// The one error type of the engine: a closed set of codes, a one-line message that names
/// the task or resource and the reason, the errno when a syscall failed, and the error that
/// caused it, if any.
public struct CheckpointError: Error, CustomStringConvertible {
    public enum Code: String, Sendable {
        case invalidArgument, notFound, invalidState, unsupported, timeout, kernel, image, busy, injected
    }

    public let code: Code
    public let message: String
    /// The errno of the failed syscall this error reports, if it reports one.
    public let errno: Errno?
    public let cause: Error?

    public init(_ code: Code, _ message: String, errno: Errno? = nil, cause: Error? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
        self.cause = cause
    }

    /// Any error as a CheckpointError: itself, the conversion its type declares, or
    /// wrapped whole (a POSIXError keeps its errno).
    public init(_ error: Error) {
        switch error {
        case let e as CheckpointError: self = e
        case let e as CheckpointErrorConvertible: self = e.checkpointError
        case let e as Errno: self.init(.kernel, e.detail, errno: e, cause: e)
        case let e as POSIXError: self.init(.kernel, "\(e)", errno: Errno(e.code.rawValue), cause: e)
        default: self.init(.invalidState, "\(error)", cause: error)
        }
    }

    public var description: String { message }

    /// The errno of this error, or else the first one down its cause chain.
    public var firstErrno: Errno? {
        var next: Error? = self
        while let current = next {
            switch current {
            case let e as CheckpointError:
                if let n = e.errno { return n }
                next = e.cause
            case let e as Errno: return e
            case let e as POSIXError: return Errno(e.code.rawValue)
            case let e as CheckpointErrorConvertible:
                // Its conversion may name it as the cause: look one level only.
                return e.checkpointError.errno
            default: return nil
            }
        }
        return nil
    }

    /// A syscall that failed with `err`: "what: strerror (errno N)".
    public static func errno(_ what: String, _ err: Errno) -> CheckpointError {
        CheckpointError(.kernel, "\(what): \(err.detail)", errno: err)
    }

    /// A syscall that failed with the raw errno `err` (by default the thread's errno now).
    public static func errno(_ what: String, _ err: Int32 = Foundation.errno) -> CheckpointError {
        errno(what, Errno(err))
    }
}

/// An error type of a module that has its own (image, /proc, OCI, registry errors), with
/// the one way it becomes a CheckpointError: its one-line text as the message, itself as
/// the cause.
public protocol CheckpointErrorConvertible: Error {
    var checkpointError: CheckpointError { get }
}
