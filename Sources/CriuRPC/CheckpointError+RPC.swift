import Foundation
import LinuxKernel

extension CheckpointError {
    /// A request option the engine does not support: refused before anything is touched.
    public static func refused(_ message: String) -> CheckpointError {
        CheckpointError(.unsupported, message)
    }
}

/// What goes into criu_resp for a failed request: cr_errno and the one-line cr_errmsg.
struct RPCFailure {
    let errno: Int32
    let message: String

    init(_ error: Error) {
        switch error {
        case let e as CheckpointError:
            message = e.message
            errno = RPCFailure.carriedErrno(e) ?? RPCFailure.errno(for: e.code)
        case let e as POSIXError:
            message = "\(e)"
            errno = e.code.rawValue
        default:
            message = "\(error)"
            errno = EINVAL
        }
    }

    /// The errno the error (or its cause) carries: a POSIXError, or the "(errno N)" that
    /// CheckpointError.errno puts at the end of its message.
    private static func carriedErrno(_ e: CheckpointError) -> Int32? {
        var next: Error? = e
        while let current = next {
            if let p = current as? POSIXError { return p.code.rawValue }
            guard let c = current as? CheckpointError else { return nil }
            if let n = parseErrno(c.message) { return n }
            next = c.cause
        }
        return nil
    }

    static func parseErrno(_ message: String) -> Int32? {
        guard let r = message.range(of: "(errno ", options: .backwards) else { return nil }
        let digits = message[r.upperBound...].prefix { $0.isNumber }
        guard let n = Int32(digits), n > 0 else { return nil }
        return n
    }

    private static func errno(for code: CheckpointError.Code) -> Int32 {
        switch code {
        case .notFound: return ENOENT
        case .busy: return EBUSY
        case .timeout: return ETIMEDOUT
        case .unsupported: return EOPNOTSUPP
        default: return EINVAL
        }
    }
}
