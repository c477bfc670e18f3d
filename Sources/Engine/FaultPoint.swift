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
    case preDumpTracked = "pre-dump-tracked"
    /// The page server dies (SIGKILL) on its first pages, as a server lost mid-dump.
    case pageServerKilled = "page-server-killed"

    public var isSet: Bool { ProcessInfo.processInfo.environment["OCICHECKPOINT_FAULT"] == rawValue }

    /// Throws at the fault point named by OCICHECKPOINT_FAULT; "hang:POINT" stops there
    /// instead, until killed (to test a run killed at that point).
    public func check() throws {
        if ProcessInfo.processInfo.environment["OCICHECKPOINT_FAULT"] == "hang:" + rawValue {
            FileHandle.standardError.write(Data("hanging at \(rawValue) (OCICHECKPOINT_FAULT)\n".utf8))
            while true { pause() }
        }
        if ProcessInfo.processInfo.environment["OCICHECKPOINT_FAULT"] == rawValue {
            throw CheckpointError(.injected, "fault injected at \(rawValue) (OCICHECKPOINT_FAULT)")
        }
    }
}
