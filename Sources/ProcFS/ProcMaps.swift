/// /proc/PID/maps and /proc/PID/smaps.
public enum ProcMaps {
    public static func parse(maps: String) throws -> [MemoryArea] {
        var areas: [MemoryArea] = []
        for line in maps.split(separator: "\n", omittingEmptySubsequences: true) {
            areas.append(try parseHeader(line, source: "maps"))
        }
        return areas
    }

    /// smaps repeats the maps line, followed by "Key: value" lines ending with VmFlags.
    /// Walked as bytes: a dump reads it for every task, and only two kinds of line matter.
    public static func parse(smaps: String) throws -> [MemoryArea] {
        var text = smaps
        return try text.withUTF8 { bytes in
            var areas: [MemoryArea] = []
            let vmFlags = Array("VmFlags:".utf8)
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                let line = UnsafeBufferPointer(rebasing: bytes[start..<end])
                if let first = line.first, isHexDigit(first) {
                    areas.append(try parseHeader(Substring(String(decoding: line, as: UTF8.self)), source: "smaps"))
                } else if line.starts(with: vmFlags) {
                    let flags = String(decoding: UnsafeBufferPointer(rebasing: line[vmFlags.count...]), as: UTF8.self)
                    guard !areas.isEmpty else {
                        throw ProcFSError(path: "smaps", reason: "VmFlags before any area: VmFlags:\(flags)")
                    }
                    areas[areas.count - 1].vmFlags = Set(ProcLines.fields(Substring(flags)).map(String.init))
                }
                start = end + 1
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
    static func parseHeader(_ line: Substring, source: String) throws -> MemoryArea {
        func bad(_ why: String) -> ProcFSError {
            ProcFSError(path: source, reason: "\(why) in line: \(line)")
        }
        var rest = line[...]
        func nextColumn() -> Substring? {
            guard let space = rest.firstIndex(of: " ") else { return nil }
            let column = rest[..<space]
            rest = rest[rest.index(after: space)...]
            return column
        }
        guard let range = nextColumn(), let perms = nextColumn(), let offsetText = nextColumn(),
              let dev = nextColumn() else { throw bad("too few columns") }
        let inodeText: Substring
        if let space = rest.firstIndex(of: " ") {
            inodeText = rest[..<space]
            rest = rest[space...].drop(while: { $0 == " " })
        } else {
            inodeText = rest
            rest = rest[rest.endIndex...]
        }

        guard let dash = range.firstIndex(of: "-"),
              let start = UInt64(range[..<dash], radix: 16),
              let end = UInt64(range[range.index(after: dash)...], radix: 16), end >= start
        else { throw bad("bad address range") }
        let p = Array(perms.utf8)
        guard p.count == 4 else { throw bad("bad permissions") }
        guard let offset = UInt64(offsetText, radix: 16) else { throw bad("bad offset") }
        guard let colon = dev.firstIndex(of: ":"),
              let major = UInt32(dev[..<colon], radix: 16),
              let minor = UInt32(dev[dev.index(after: colon)...], radix: 16)
        else { throw bad("bad device") }
        guard let inode = UInt64(inodeText) else { throw bad("bad inode") }

        return MemoryArea(start: start, end: end,
                          readable: p[0] == UInt8(ascii: "r"),
                          writable: p[1] == UInt8(ascii: "w"),
                          executable: p[2] == UInt8(ascii: "x"),
                          shared: p[3] == UInt8(ascii: "s"),
                          offset: offset, devMajor: major, devMinor: minor, inode: inode,
                          path: String(rest))
    }
}
