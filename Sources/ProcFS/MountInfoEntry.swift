/// One line of /proc/PID/mountinfo (proc(5)):
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
///
/// The kernel writes space, tab, newline and backslash inside a field as octal escapes
/// ("\040"); paths, type and source come out decoded. The super options stay raw because
/// an escaped comma ("\054") inside a value is not a separator: `superOptionList` splits
/// first, then decodes.
public struct MountInfoEntry: Equatable, Sendable {
    public var mountID: Int
    public var parentID: Int
    public var devMajor: UInt32
    public var devMinor: UInt32
    /// The directory of the filesystem that is mounted here (not "/" for bind mounts).
    public var root: String
    public var mountPoint: String
    /// Per-mount options, comma-separated ("rw,nosuid,relatime"); keywords, never escaped.
    public var mountOptions: String
    /// The optional fields, raw ("shared:2", "master:1", "propagate_from:1", "unbindable").
    public var optionalFields: [String]
    public var fsType: String
    public var source: String
    /// Per-superblock options, raw and comma-separated; escapes kept so commas stay separators.
    public var superOptions: String

    public init(mountID: Int, parentID: Int, devMajor: UInt32, devMinor: UInt32,
                root: String, mountPoint: String, mountOptions: String,
                optionalFields: [String] = [], fsType: String, source: String,
                superOptions: String) {
        self.mountID = mountID
        self.parentID = parentID
        self.devMajor = devMajor
        self.devMinor = devMinor
        self.root = root
        self.mountPoint = mountPoint
        self.mountOptions = mountOptions
        self.optionalFields = optionalFields
        self.fsType = fsType
        self.source = source
        self.superOptions = superOptions
    }

    /// Peer group this mount shares events with.
    public var sharedGroup: Int? { optionalValue("shared") }
    /// Peer group this mount receives events from.
    public var masterGroup: Int? { optionalValue("master") }
    /// The nearest dominant peer group visible in this namespace.
    public var propagateFrom: Int? { optionalValue("propagate_from") }
    public var isUnbindable: Bool { optionalFields.contains("unbindable") }
    public var isReadOnly: Bool { mountOptions.split(separator: ",").first == "ro" }

    /// The super options one by one, decoded ("size=64k", "mode=755", "lowerdir=/a,b").
    public var superOptionList: [String] {
        superOptions.split(separator: ",").map { Self.unescape($0) }
    }

    private func optionalValue(_ tag: String) -> Int? {
        for field in optionalFields where field.hasPrefix(tag + ":") {
            return Int(field.dropFirst(tag.count + 1))
        }
        return nil
    }

    public static func read(pid: Int32) throws -> [MountInfoEntry] {
        try read(path: procPath(pid, "mountinfo"))
    }

    /// A mountinfo file by path ("/proc/self/mountinfo", or a saved copy).
    public static func read(path: String) throws -> [MountInfoEntry] {
        do {
            return try parse(try readProcFile(path))
        } catch let error as ProcFSError where error.path == "mountinfo" {
            throw ProcFSError(path: path, reason: error.reason)
        }
    }

    public static func parse(_ text: String) throws -> [MountInfoEntry] {
        try text.split(separator: "\n", omittingEmptySubsequences: true).map(parse(line:))
    }

    public static func parse(line: Substring) throws -> MountInfoEntry {
        func bad(_ why: String) -> ProcFSError {
            ProcFSError(path: "mountinfo", reason: "\(why) in line: \(line)")
        }
        // The kernel escapes spaces in every field, so splitting on " " is exact.
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count >= dash + 3 else {
            throw bad("missing fields or separator")
        }
        guard let mountID = Int(fields[0]), let parentID = Int(fields[1]) else {
            throw bad("bad mount ids")
        }
        let dev = fields[2].split(separator: ":")
        guard dev.count == 2, let major = UInt32(dev[0]), let minor = UInt32(dev[1]) else {
            throw bad("bad major:minor")
        }
        return MountInfoEntry(
            mountID: mountID, parentID: parentID, devMajor: major, devMinor: minor,
            root: unescape(fields[3]), mountPoint: unescape(fields[4]),
            mountOptions: String(fields[5]),
            optionalFields: fields[6..<dash].map(String.init),
            fsType: unescape(fields[dash + 1]), source: unescape(fields[dash + 2]),
            superOptions: fields.count > dash + 3 ? String(fields[dash + 3]) : "")
    }

    /// Undoes the kernel's octal escapes ("\040" space, "\011" tab, "\012" newline, "\134"
    /// backslash, "\054" comma in a super option); anything else stays as it is.
    public static func unescape(_ text: Substring) -> String {
        guard text.contains("\\") else { return String(text) }
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count, let value = octal(bytes[(i + 1)...(i + 3)]) {
                out.append(value)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func octal(_ digits: ArraySlice<UInt8>) -> UInt8? {
        var value = 0
        for d in digits {
            guard d >= UInt8(ascii: "0"), d <= UInt8(ascii: "7") else { return nil }
            value = value * 8 + Int(d - UInt8(ascii: "0"))
        }
        return value <= 255 ? UInt8(value) : nil
    }
}
