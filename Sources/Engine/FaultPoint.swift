import Foundation
import LinuxKernel
import Images

/// Fault points for tests: `OCICHECKPOINT_FAULT=<point>` fails the run there, as a real
/// error would, so the rollback paths are exercised on real processes.
public enum FaultPoint: String, Sendable {
    case dumpAfterSeize = "dump-after-seize"
    case dumpAfterMemory = "dump-after-memory"
    case restoreAfterFork = "restore-after-fork"
    case restoreBeforeResume = "restore-before-resume"
    /// The page server dies (SIGKILL) on its first pages, as a server lost mid-dump.
    case pageServerKilled = "page-server-killed"

    public var isSet: Bool { ProcessInfo.processInfo.environment["OCICHECKPOINT_FAULT"] == rawValue }

    public func check() throws {
        if ProcessInfo.processInfo.environment["OCICHECKPOINT_FAULT"] == rawValue {
            throw CheckpointError(.injected, "fault injected at \(rawValue) (OCICHECKPOINT_FAULT)")
        }
    }
}
