/// /proc/PID/maps and /proc/PID/smaps.
public enum ProcMaps {
    public static func parse(maps: String) throws -> [MemoryArea] {
        var text = maps
        return try text.withUTF8 { bytes in
            var areas: [MemoryArea] = []
            try forEachLine(bytes) { line in
                if !line.isEmpty { areas.append(try parseHeader(line, source: "maps")) }
            }
            return areas
        }
    }

    private static func forEachLine(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) throws -> Void) rethrows {
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            try body(UnsafeBufferPointer(rebasing: bytes[start..<end]))
            start = end + 1
        }
    }

    /// smaps repeats the maps line, followed by "Key: value" lines ending with VmFlags.
    /// Walked as bytes: a dump reads it for every task, and only two kinds of line matter.
    public static func parse(smaps: String) throws -> [MemoryArea] {
        var text = smaps
        return try text.withUTF8 { bytes in
            var areas: [MemoryArea] = []
            let vmFlags = Array("VmFlags:".utf8)
            try forEachLine(bytes) { line in
                if let first = line.first, isHexDigit(first) {
                    areas.append(try parseHeader(line, source: "smaps"))
                } else if line.starts(with: vmFlags) {
                    let flags = String(decoding: UnsafeBufferPointer(rebasing: line[vmFlags.count...]), as: UTF8.self)
                    guard !areas.isEmpty else {
                        throw ProcFSError(path: "smaps", reason: "VmFlags before any area: VmFlags:\(flags)")
                    }
                    areas[areas.count - 1].vmFlags = Set(ProcLines.fields(Substring(flags)).map(String.init))
                }
            }
            return areas
        }
    }

    public static func read(pid: Int32) throws -> [MemoryArea] {
        let path = procPath(pid, "smaps")
        do {
            return try parse(smaps: try readProcFile(path))
        } catch let error as ProcFSError where error.path == "smaps" {
            throw ProcFSError(path: path, reason: error.reason)
        }
    }

    /// Area lines start "start-end " in lowercase hex; smaps keys start with a capital letter.
    private static func isHexDigit(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f"))
    }

    /// Columns by position: range, perms, offset, dev, inode, then the path is the rest of
    /// the line after the padding, spaces included.
    /// "start-end perms offset major:minor inode   path", walked as bytes (a restore
    /// reads the maps of every task it makes, a dump the smaps of every task it dumps).
    static func parseHeader(_ line: UnsafeBufferPointer<UInt8>, source: String) throws -> MemoryArea {
        func bad(_ why: String) -> ProcFSError {
            ProcFSError(path: source, reason: "\(why) in line: \(String(decoding: line, as: UTF8.self))")
        }
        var i = 0
        /// A number in `radix` ending at `stop` (or at the line's end when `last`), which is skipped.
        func number(_ radix: UInt64, until stop: UInt8, last: Bool = false) -> UInt64? {
            var value: UInt64 = 0, digits = 0
            while i < line.count && line[i] != stop {
                let c = line[i]
                let d: UInt64
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt64(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f") where radix == 16: d = UInt64(c - UInt8(ascii: "a") + 10)
                default: return nil
                }
                let (m, overflow) = value.multipliedReportingOverflow(by: radix)
                guard !overflow else { return nil }
                value = m + d
                digits += 1
                i += 1
            }
            guard digits > 0, i < line.count || last else { return nil }
            i += 1
            return value
        }
        guard let start = number(16, until: UInt8(ascii: "-")), let end = number(16, until: UInt8(ascii: " ")), end >= start else {
            throw bad("bad address range")
        }
        guard i + 5 <= line.count, line[i + 4] == UInt8(ascii: " ") else { throw bad("bad permissions") }
        let p = line[i..<i + 4]
        i += 5
        guard let offset = number(16, until: UInt8(ascii: " ")) else { throw bad("bad offset") }
        guard let major = number(16, until: UInt8(ascii: ":")), let minor = number(16, until: UInt8(ascii: " ")),
              major <= UInt32.max, minor <= UInt32.max else { throw bad("bad device") }
        guard let inode = number(10, until: UInt8(ascii: " "), last: true) else { throw bad("bad inode") }
        while i < line.count && line[i] == UInt8(ascii: " ") { i += 1 }
        let path = i < line.count ? String(decoding: UnsafeBufferPointer(rebasing: line[i...]), as: UTF8.self) : ""
        return MemoryArea(start: start, end: end,
                          readable: p[p.startIndex] == UInt8(ascii: "r"),
                          writable: p[p.startIndex + 1] == UInt8(ascii: "w"),
                          executable: p[p.startIndex + 2] == UInt8(ascii: "x"),
                          shared: p[p.startIndex + 3] == UInt8(ascii: "s"),
                          offset: offset, devMajor: UInt32(major), devMinor: UInt32(minor), inode: inode,
                          path: path)
    }
}
