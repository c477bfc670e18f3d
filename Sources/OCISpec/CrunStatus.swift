import Foundation

/// crun's /run/crun/ID/status. crun keeps the container's config.json beside it.
public struct CrunStatus: JSONModel {
    public var pid: Int32 = 0
    /// The init's start time in clock ticks (field 22 of /proc/PID/stat).
    public var processStartTime: UInt64?
    /// Relative to each cgroup hierarchy's mount ("/ID").
    public var cgroupPath: String?
    public var scope: String?
    /// As config.json's root.path: relative paths are inside `bundle`.
    public var rootfs = ""
    public var systemdCgroup: Bool?
    public var bundle = ""
    public var created: String?
    public var owner: String?
    public var detached: Bool?
    /// A JSON array encoded as a string, as crun writes it.
    public var externalDescriptors: String?
    public var unknownFields: [String: JSONValue] = [:]

    public init() {}
    public static var fields: [JSONField<CrunStatus>] {
        [.required("pid", \.pid), .optional("process-start-time", \.processStartTime),
         .optional("cgroup-path", \.cgroupPath), .optional("scope", \.scope), .required("rootfs", \.rootfs),
         .optional("systemd-cgroup", \.systemdCgroup), .required("bundle", \.bundle), .optional("created", \.created),
         .optional("owner", \.owner), .optional("detached", \.detached),
         .optional("external_descriptors", \.externalDescriptors)]
    }

    /// The rootfs as an absolute path.
    public var rootfsPath: String {
        rootfs.hasPrefix("/") ? rootfs : (bundle as NSString).appendingPathComponent(rootfs)
    }

    /// `externalDescriptors` decoded; nil when absent or not a JSON array of strings.
    public var descriptors: [String]? {
        guard let text = externalDescriptors else { return nil }
        return try? JSONDecoder().decode([String].self, from: Data(text.utf8))
    }
}
