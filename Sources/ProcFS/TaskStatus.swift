/// /proc/PID/status or /proc/PID/task/TID/status.
public struct TaskStatus: Equatable, Sendable {
    public var name: String
    public var state: Character
    public var tgid: Int32
    public var pid: Int32
    public var ppid: Int32
    public var tracerPid: Int32
    /// real, effective, saved, fs
    public var uid: [UInt32]
    /// real, effective, saved, fs
    public var gid: [UInt32]
    public var groups: [UInt32]
    /// Outermost PID namespace first, the task's own namespace last.
    public var nsPid: [Int32]
    public var nsTgid: [Int32]
    public var nsPgid: [Int32]
    public var nsSid: [Int32]
    public var sigPnd: UInt64
    public var shdPnd: UInt64
    public var sigBlk: UInt64
    public var sigIgn: UInt64
    public var sigCgt: UInt64
    public var capInh: UInt64
    public var capPrm: UInt64
    public var capEff: UInt64
    public var capBnd: UInt64
    public var capAmb: UInt64
    public var noNewPrivs: Bool
    /// 0 disabled, 1 strict, 2 filter
    public var seccomp: Int
    public var seccompFilters: Int
    public var umask: UInt32
    public var threads: Int

    public static func read(pid: Int32, tid: Int32? = nil) throws -> TaskStatus {
        let path = procPath(pid, tid: tid, "status")
        do {
            return try parse(try readProcFile(path))
        } catch let error as ProcFSError where error.path == "status" {
            throw ProcFSError(path: path, reason: error.reason)
        }
    }

    public static func parse(_ text: String) throws -> TaskStatus {
        var values: [Substring: Substring] = [:]
        var name: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            // Name keeps its own spaces and tabs; the kernel escapes only newline and backslash.
            if line.hasPrefix("Name:\t") {
                name = unescapeName(line.dropFirst("Name:\t".count))
                continue
            }
            guard let (key, value) = ProcLines.keyValue(line) else { continue }
            values[key] = value
        }

        func bad(_ why: String) -> ProcFSError { ProcFSError(path: "status", reason: why) }
        func required(_ key: Substring) throws -> Substring {
            guard let value = values[key] else { throw bad("no \(key) line") }
            return value
        }
        func int32(_ key: Substring) throws -> Int32 {
            let text = try required(key)
            guard let value = Int32(text) else { throw bad("\(key) is not a number: \(text)") }
            return value
        }
        func list<T: FixedWidthInteger>(_ key: Substring, _: T.Type, required: Bool) throws -> [T] {
            guard let text = values[key] else {
                if required { throw bad("no \(key) line") }
                return []
            }
            return try ProcLines.fields(text).map {
                guard let value = T($0) else { throw bad("\(key) has a bad number: \(text)") }
                return value
            }
        }
        func hex(_ key: Substring) throws -> UInt64 {
            guard let text = values[key] else { return 0 }
            guard let value = UInt64(text, radix: 16) else { throw bad("\(key) is not hex: \(text)") }
            return value
        }
        func int(_ key: Substring) throws -> Int {
            guard let text = values[key] else { return 0 }
            guard let value = Int(text) else { throw bad("\(key) is not a number: \(text)") }
            return value
        }

        guard let name else { throw bad("no Name line") }
        guard let state = try required("State").first else { throw bad("empty State") }
        let uid = try list("Uid", UInt32.self, required: true)
        let gid = try list("Gid", UInt32.self, required: true)
        guard uid.count == 4, gid.count == 4 else { throw bad("Uid/Gid need 4 values") }
        var umask: UInt32 = 0
        if let text = values["Umask"] {
            guard let value = UInt32(text, radix: 8) else { throw bad("Umask is not octal: \(text)") }
            umask = value
        }

        return TaskStatus(
            name: name, state: state,
            tgid: try int32("Tgid"), pid: try int32("Pid"), ppid: try int32("PPid"),
            tracerPid: values["TracerPid"] == nil ? 0 : try int32("TracerPid"),
            uid: uid, gid: gid,
            groups: try list("Groups", UInt32.self, required: false),
            nsPid: try list("NSpid", Int32.self, required: false),
            nsTgid: try list("NStgid", Int32.self, required: false),
            nsPgid: try list("NSpgid", Int32.self, required: false),
            nsSid: try list("NSsid", Int32.self, required: false),
            sigPnd: try hex("SigPnd"), shdPnd: try hex("ShdPnd"), sigBlk: try hex("SigBlk"),
            sigIgn: try hex("SigIgn"), sigCgt: try hex("SigCgt"),
            capInh: try hex("CapInh"), capPrm: try hex("CapPrm"), capEff: try hex("CapEff"),
            capBnd: try hex("CapBnd"), capAmb: try hex("CapAmb"),
            noNewPrivs: try int("NoNewPrivs") != 0,
            seccomp: try int("Seccomp"), seccompFilters: try int("Seccomp_filters"),
            umask: umask, threads: try int("Threads"))
    }

    private static func unescapeName(_ text: Substring) -> String {
        guard text.contains("\\") else { return String(text) }
        var out = "", escaped = false
        for c in text {
            if escaped {
                out.append(c == "n" ? "\n" : c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return out
    }
}
