// Small helpers every system test needs: a failure with a message, polling, /proc reading.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A test setup step that failed, with what went wrong.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` every 20 ms until it holds or `timeout` seconds have passed.
@discardableResult
public func waitFor(_ timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if condition() { return true }
        if Date() > deadline { return false }
        usleep(20_000)
    }
}

/// The file's text, nil when it cannot be read.
public func readFile(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

/// The `Name:\tvalue` lines of /proc/PID/status.
public func procStatus(_ pid: Int32) -> [String: String] {
    var fields: [String: String] = [:]
    for line in (readFile("/proc/\(pid)/status") ?? "").split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return fields
}

/// Where the package is, and the ocicheckpoint binary the system tests drive.
public enum Project {
    /// Tests/SystemTestSupport/Helpers.swift → package root.
    public static let root: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    /// $OCICHECKPOINT_BIN, else the debug build in the package.
    public static var binary: String {
        if let b = ProcessInfo.processInfo.environment["OCICHECKPOINT_BIN"], !b.isEmpty { return b }
        return root + "/.build/debug/ocicheckpoint"
    }
}
