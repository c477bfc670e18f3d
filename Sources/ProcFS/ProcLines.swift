/// Helpers shared by the "Key:<tab>value" parsers (status, fdinfo, smaps).
enum ProcLines {
    /// Splits "Key:  value" at the first colon; the value keeps inner spacing, trimmed at both ends.
    static func keyValue(_ line: Substring) -> (key: Substring, value: Substring)? {
        guard let colon = line.firstIndex(of: ":") else { return nil }
        return (line[..<colon], trimmed(line[line.index(after: colon)...]))
    }

    static func trimmed(_ s: Substring) -> Substring {
        var start = s.startIndex, end = s.endIndex
        while start < end, s[start] == " " || s[start] == "\t" { start = s.index(after: start) }
        while end > start {
            let before = s.index(before: end)
            guard s[before] == " " || s[before] == "\t" else { break }
            end = before
        }
        return s[start..<end]
    }

    static func fields(_ s: Substring) -> [Substring] {
        s.split(whereSeparator: { $0 == " " || $0 == "\t" })
    }
}
