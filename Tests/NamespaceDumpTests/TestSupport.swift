import Foundation
import SystemTestSupport
import LinuxKernel

enum Helper {
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Helpers/ipc-helper.c").path
    private static let lock = NSLock()
    nonisolated(unsafe) private static var built: String?

    /// The ipc helper, compiled once per test run.
    static func path() throws -> String {
        lock.lock(); defer { lock.unlock() }
        if let built { return built }
        let out = NSTemporaryDirectory() + "ocicheckpoint-ipc-helper-\(getpid())"
        try must(["/usr/bin/cc", "-O1", "-Wall", "-o", out, source])
        built = out
        return out
    }
}

func nsLink(_ pid: Int32, _ kind: String) -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(kind)")) ?? ""
}
