import Foundation

/// The one error type of the engine: a closed set of codes, a one-line message that names
/// the task or resource and the reason, and the error that caused it, if any.
public struct CheckpointError: Error, CustomStringConvertible {
    public enum Code: String, Sendable {
        case invalidArgument, notFound, invalidState, unsupported, timeout, kernel, image, busy, injected
    }

    public let code: Code
    public let message: String
    public let cause: Error?

    public init(_ code: Code, _ message: String, cause: Error? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }

    /// A syscall that failed with `errno`: "what: strerror (ERRNO)".
    public static func errno(_ what: String, _ err: Int32 = Foundation.errno) -> CheckpointError {
        CheckpointError(.kernel, "\(what): \(Errno.describe(err))")
    }
}

public enum Errno {
    public static func describe(_ err: Int32) -> String {
        "\(String(cString: strerror(err))) (errno \(err))"
    }
}
