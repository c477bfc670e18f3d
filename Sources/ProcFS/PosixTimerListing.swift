/// One POSIX timer as /proc/PID/timers lists it (fs/proc/base.c show_timer):
/// `ID: n`, `signal: SIGNO/SIVAL`, `notify: KIND/pid.N` or `KIND/tid.N`, `ClockID: c`.
public struct PosixTimerListing: Equatable, Sendable {
    public var id: Int32
    public var signal: Int32
    /// sigev_value as the timer delivers it (%px: hex without 0x).
    public var value: UInt64
    /// sigev_notify: SIGEV_SIGNAL 0, SIGEV_NONE 1, SIGEV_THREAD 2, | SIGEV_THREAD_ID 4.
    public var notify: UInt32
    /// The pid or tid the signal goes to, in the pid namespace of this /proc.
    public var target: Int32
    public var clock: Int32

    public static let sigevThreadID: UInt32 = 4

    public static func read(pid: Int32) throws -> [PosixTimerListing] {
        let path = procPath(pid, "timers")
        do { return try parse(try readProcFile(path)) } catch let e as ProcFSError where e.path == "timers" {
            throw ProcFSError(path: path, reason: e.reason)
        }
    }

    public static func parse(_ text: String) throws -> [PosixTimerListing] {
        func bad(_ why: String) -> ProcFSError { ProcFSError(path: "timers", reason: why) }
        var out: [PosixTimerListing] = []
        var current: PosixTimerListing?
        for line in text.split(separator: "\n") {
            guard let (key, value) = ProcLines.keyValue(line) else { throw bad("unexpected line '\(line)'") }
            switch key {
            case "ID":
                if let c = current { out.append(c) }
                guard let id = Int32(value) else { throw bad("bad ID '\(value)'") }
                current = PosixTimerListing(id: id, signal: 0, value: 0, notify: 0, target: 0, clock: 0)
            case "signal":
                let parts = value.split(separator: "/")
                guard parts.count == 2, let sig = Int32(parts[0]), let v = UInt64(parts[1], radix: 16) else {
                    throw bad("bad signal line '\(value)'")
                }
                current?.signal = sig
                current?.value = v
            case "notify":
                let parts = value.split(separator: "/")
                let kinds: [Substring: UInt32] = ["signal": 0, "none": 1, "thread": 2]
                guard parts.count == 2, var notify = kinds[parts[0]],
                      let dot = parts[1].firstIndex(of: "."), let target = Int32(parts[1][parts[1].index(after: dot)...]) else {
                    throw bad("bad notify line '\(value)'")
                }
                if parts[1].hasPrefix("tid") { notify |= sigevThreadID }
                current?.notify = notify
                current?.target = target
            case "ClockID":
                guard let c = Int32(value) else { throw bad("bad ClockID '\(value)'") }
                current?.clock = c
            default:
                throw bad("unknown key '\(key)'")
            }
        }
        if let c = current { out.append(c) }
        return out
    }
}
