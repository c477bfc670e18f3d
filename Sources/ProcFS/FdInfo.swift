/// /proc/PID/fdinfo/N: the common pos/flags/mnt_id/ino lines plus whatever the file kind adds
/// (eventfd-count, tfd for epoll, inotify wd, sigmask, ...).
public struct FdInfo: Equatable, Sendable {
    public var pos: UInt64
    /// open(2) flags, octal in the file
    public var flags: UInt32
    public var mntId: Int
    public var ino: UInt64
    /// Every "key: value" line, values trimmed; a repeated key keeps its first value.
    public var fields: [String: String]
    /// Every non-empty line in file order, trimmed; repeated keys ("tfd:" of epoll,
    /// "inotify wd:") are only complete here.
    public var lines: [String]

    public static func read(pid: Int32, fd: Int32) throws -> FdInfo {
        let path = procPath(pid, "fdinfo/\(fd)")
        do {
            return try parse(try readProcFile(path))
        } catch let error as ProcFSError where error.path == "fdinfo" {
            throw ProcFSError(path: path, reason: error.reason)
        }
    }

    public static func parse(_ text: String) throws -> FdInfo {
        func bad(_ why: String) -> ProcFSError { ProcFSError(path: "fdinfo", reason: why) }
        var fields: [String: String] = [:]
        var lines: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let trimmed = ProcLines.trimmed(line)
            guard !trimmed.isEmpty else { continue }
            lines.append(String(trimmed))
            if let (key, value) = ProcLines.keyValue(trimmed), fields[String(key)] == nil {
                fields[String(key)] = String(value)
            }
        }
        guard let posText = fields["pos"], let pos = UInt64(posText) else { throw bad("no pos line") }
        guard let flagsText = fields["flags"], let flags = UInt32(flagsText, radix: 8) else {
            throw bad("no octal flags line")
        }
        return FdInfo(pos: pos, flags: flags,
                      mntId: fields["mnt_id"].flatMap { Int($0) } ?? 0,
                      ino: fields["ino"].flatMap { UInt64($0) } ?? 0,
                      fields: fields, lines: lines)
    }

    /// The values of every line whose key is `key`, in file order.
    public func values(of key: String) -> [String] {
        lines.compactMap { line in
            guard let (k, v) = ProcLines.keyValue(line[...]), k == key else { return nil }
            return String(v)
        }
    }
}
