/// /proc/PID/stat or /proc/PID/task/TID/stat; field numbers in the comments are proc(5)'s.
public struct TaskStat: Equatable, Sendable {
    public var pid: Int32              // 1
    public var comm: String            // 2
    public var state: Character        // 3
    public var ppid: Int32             // 4
    public var pgrp: Int32             // 5
    public var session: Int32          // 6
    public var ttyNr: Int32            // 7
    public var tpgid: Int32            // 8
    public var flags: UInt32           // 9
    public var utime: UInt64           // 14
    public var stime: UInt64           // 15
    public var priority: Int64         // 18
    public var nice: Int64             // 19
    public var numThreads: Int64       // 20
    public var startTime: UInt64       // 22
    public var vsize: UInt64           // 23
    public var startCode: UInt64       // 26
    public var endCode: UInt64         // 27
    public var startStack: UInt64      // 28
    public var exitSignal: Int32       // 38
    public var processor: Int32        // 39
    public var rtPriority: UInt32      // 40
    public var policy: UInt32          // 41
    public var startData: UInt64       // 45
    public var endData: UInt64         // 46
    public var startBrk: UInt64        // 47
    public var argStart: UInt64        // 48
    public var argEnd: UInt64          // 49
    public var envStart: UInt64        // 50
    public var envEnd: UInt64          // 51
    public var exitCode: Int32         // 52

    public static func read(pid: Int32, tid: Int32? = nil) throws -> TaskStat {
        let path = procPath(pid, tid: tid, "stat")
        do {
            return try parse(try readProcFile(path))
        } catch let error as ProcFSError where error.path == "stat" {
            throw ProcFSError(path: path, reason: error.reason)
        }
    }

    /// comm may hold spaces and parentheses, so it runs from the first "(" to the last ")".
    public static func parse(_ text: String) throws -> TaskStat {
        func bad(_ why: String) -> ProcFSError { ProcFSError(path: "stat", reason: why) }
        guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")"),
              open < close else { throw bad("no (comm) in: \(text.prefix(80))") }
        guard let pid = Int32(ProcLines.trimmed(text[..<open])) else { throw bad("bad pid") }
        let comm = String(text[text.index(after: open)..<close])
        let rest = ProcLines.fields(text[text.index(after: close)...].prefix(while: { $0 != "\n" }))
        // rest[0] is field 3
        guard rest.count >= 50 else { throw bad("only \(rest.count + 2) fields, need 52") }

        func field<T: FixedWidthInteger>(_ number: Int, _: T.Type = T.self) throws -> T {
            let text = rest[number - 3]
            guard let value = T(text) else { throw bad("field \(number) is not a number: \(text)") }
            return value
        }
        guard let state = rest[0].first else { throw bad("empty state") }
        return TaskStat(
            pid: pid, comm: comm, state: state,
            ppid: try field(4), pgrp: try field(5), session: try field(6), ttyNr: try field(7),
            tpgid: try field(8), flags: try field(9),
            utime: try field(14), stime: try field(15),
            priority: try field(18), nice: try field(19), numThreads: try field(20),
            startTime: try field(22), vsize: try field(23),
            startCode: try field(26), endCode: try field(27), startStack: try field(28),
            exitSignal: try field(38), processor: try field(39),
            rtPriority: try field(40), policy: try field(41),
            startData: try field(45), endData: try field(46), startBrk: try field(47),
            argStart: try field(48), argEnd: try field(49),
            envStart: try field(50), envEnd: try field(51), exitCode: try field(52))
    }
}
