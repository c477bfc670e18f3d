import Foundation
import Engine
import LinuxKernel

/// Freezes and thaws every task of a cgroup: v1 through freezer.state (a directory of the
/// freezer hierarchy, e.g. /sys/fs/cgroup/freezer/ID), v2 through cgroup.freeze (any
/// directory of the unified hierarchy). The dump freezes before seizing and must thaw on
/// every exit path; a freeze that does not complete is thawed before the error is thrown.
public enum CgroupFreezer {
    /// Writes the freeze request, then waits until the kernel reports every task frozen.
    public static func freeze(path: String, timeout: Double = 10) throws {
        let f = try freezer(path)
        try f.requestFreeze()
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
        var delay: useconds_t = 100
        while true {
            if try f.isFrozen() { return }
            if DispatchTime.now().uptimeNanoseconds >= deadline {
                let state = (try? f.describeState()) ?? "unknown"
                f.requestThaw()
                throw CheckpointError(.timeout, "freezer \(path): not frozen after \(timeout) s (\(state); a task may be stuck in uninterruptible sleep); thawed again")
            }
            usleep(delay)
            delay = min(delay * 2, 10_000)
        }
    }

    /// Thaws; never throws, so it can run on every exit path. Returns whether the cgroup
    /// reports itself thawed afterwards.
    @discardableResult
    public static func thaw(path: String) -> Bool {
        guard let f = try? freezer(path) else { return false }
        f.requestThaw()
        return (try? f.isFrozen()) == false
    }

    /// Freezes, runs `body`, and thaws whatever `body` does (throws or returns).
    public static func whileFrozen<T>(path: String, timeout: Double = 10, _ body: () throws -> T) throws -> T {
        try freeze(path: path, timeout: timeout)
        defer { thaw(path: path) }
        return try body()
    }

    /// Whether every task of the cgroup is frozen now.
    public static func isFrozen(path: String) throws -> Bool {
        try freezer(path).isFrozen()
    }

    /// The kernel's word for it: THAWED/FREEZING/FROZEN (v1), "frozen 0|1" (v2).
    public static func state(path: String) throws -> String {
        try freezer(path).describeState()
    }

    static func freezer(_ path: String) throws -> any Freezer {
        if CgroupFile.exists(path + "/freezer.state") { return V1Freezer(directory: path) }
        if CgroupFile.exists(path + "/cgroup.freeze") { return V2Freezer(directory: path) }
        if !CgroupFile.exists(path) { throw CheckpointError(.notFound, "freezer \(path): no such cgroup") }
        throw CheckpointError(.invalidArgument, "freezer \(path): neither freezer.state (v1 freezer hierarchy) nor cgroup.freeze (v2) is there")
    }
}

/// The freezer of one cgroup version.
protocol Freezer {
    func requestFreeze() throws
    func requestThaw()
    func isFrozen() throws -> Bool
    func describeState() throws -> String
}

struct V1Freezer: Freezer {
    let directory: String
    var file: String { directory + "/freezer.state" }

    func requestFreeze() throws { try write("FROZEN") }
    func requestThaw() { try? write("THAWED") }
    func isFrozen() throws -> Bool { try CgroupFile.read(file) == "FROZEN" }
    func describeState() throws -> String { try CgroupFile.read(file) }

    private func write(_ state: String) throws {
        try CgroupV1Hierarchy(mountPoint: directory, controllerNames: ["freezer"]).writeFile(file, state)
    }
}

struct V2Freezer: Freezer {
    let directory: String

    func requestFreeze() throws { try write("1") }
    func requestThaw() { try? write("0") }
    func isFrozen() throws -> Bool { try describeState() == "frozen 1" }

    /// The "frozen" line of cgroup.events.
    func describeState() throws -> String {
        let events = try CgroupFile.read(directory + "/cgroup.events")
        return events.split(separator: "\n").first { $0.hasPrefix("frozen ") }.map(String.init) ?? "frozen ?"
    }

    private func write(_ value: String) throws {
        try CgroupV2Hierarchy(mountPoint: directory).writeFile(directory + "/cgroup.freeze", value)
    }
}

/// The engine's TreeFreezer over a cgroup freezer: `DumpOptions.freezer =
/// CgroupTreeFreezer(path: options.freezeCgroup)`. It remembers whether the cgroup was
/// frozen before the dump (a paused container) and puts that state back, as CRIU does.
public final class CgroupTreeFreezer: TreeFreezer {
    public let path: String
    public let timeout: Double
    private var wasFrozen = false

    public init(path: String, timeout: Double = 10) throws {
        _ = try CgroupFreezer.freezer(path)
        self.path = path
        self.timeout = timeout
    }

    public func freeze() throws {
        // FREEZING counts as frozen: the request was made before us and stands.
        let f = try CgroupFreezer.freezer(path)
        wasFrozen = try f.isFrozen() || f.describeState() == "FREEZING"
        try CgroupFreezer.freeze(path: path, timeout: timeout)
    }

    public func thaw() { CgroupFreezer.thaw(path: path) }

    public func restoringOriginalState(_ release: () -> Void) {
        guard wasFrozen, let f = try? CgroupFreezer.freezer(path) else {
            release()
            return
        }
        // Traced tasks freeze too; once released they stay frozen without running.
        try? f.requestFreeze()
        release()
        try? CgroupFreezer.freeze(path: path, timeout: timeout)
    }
}
