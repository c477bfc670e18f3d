import CArchive
import LinuxKernel

/// The archive library's messages, all CheckpointErrors naming the archive and the reason.
enum ArchiveError {
    /// `subject` names what was read: "archive PATH", "OCI layout DIR layer sha256:...".
    static func damaged(_ subject: String, _ reason: String) -> CheckpointError {
        CheckpointError(.image, "\(subject) refused: \(reason)")
    }

    static func libarchive(_ handle: OpaquePointer?, _ what: String) -> CheckpointError {
        let reason = handle.flatMap { archive_error_string($0) }.map { String(cString: $0) } ?? "unknown libarchive error"
        return CheckpointError(.image, "\(what): \(reason)")
    }
}
