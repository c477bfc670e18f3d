import Foundation
import LinuxKernel
import ProcFS

/// The program that asked for a dump through runc, when it names itself in the engine's
/// environment (`OCICHECKPOINT_CLIENT=PID:STARTTIME`, set by `ocicheckpoint checkpoint`):
/// once it has died nobody will take the images, so the dump is abandoned before anything
/// is stopped for good and the tree is released as it was found.
public enum DumpClient {
    public static let variable = "OCICHECKPOINT_CLIENT"

    public static func check() throws {
        guard let value = ProcessInfo.processInfo.environment[variable] else { return }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let pid = Int32(parts[0]), let start = UInt64(parts[1]) else { return }
        if (try? TaskStat.read(pid: pid, tid: nil))?.startTime != start {
            throw CheckpointError(.invalidState, "the checkpoint's client (pid \(pid)) has died: dump abandoned, the tree keeps running as it was")
        }
    }
}
