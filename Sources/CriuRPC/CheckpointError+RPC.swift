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
        let e = CheckpointError(error)
        message = e.message
        errno = e.firstErrno?.rawValue ?? RPCFailure.errno(for: e.code)
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
