import LinuxKernel
import Foundation
import Images

/// The mount points of the dumped tree: its mount namespace's mountpoints-N.img when
/// the dump has one (a container), else the mounts spec.dump asked the runtime for.
struct MountsReader {
    let images: ImageDirectory

    /// Names of CRIU's fstype enum (images/mnt.proto) for entries without an fsname.
    static let fsTypes: [UInt32: String] = [
        1: "proc", 2: "sysfs", 3: "devtmpfs", 4: "binfmt_misc", 5: "tmpfs", 6: "devpts", 7: "simfs",
        8: "pstore", 9: "securityfs", 10: "fusectl", 11: "debugfs", 12: "cgroup", 13: "aufs",
        14: "mqueue", 15: "fuse", 16: "auto", 17: "overlay", 18: "autofs", 19: "tracefs", 23: "cgroup2",
    ]

    func read(spec: [(destination: String, type: String, source: String)]) throws -> [InspectReport.Mount] {
        guard let name = try imageName() else {
            return spec.map { InspectReport.Mount(destination: $0.destination, type: $0.type, source: $0.source, origin: "spec.dump") }
        }
        return try images.read(name, as: MntEntry.self).map { m in
            let type = m.hasFsname && !m.fsname.isEmpty ? m.fsname : (Self.fsTypes[m.fstype] ?? "unsupported")
            let source = m.extMount && m.hasExtKey ? "external: \(m.extKey)" : m.source
            return InspectReport.Mount(destination: m.mountpoint, type: type, source: source, origin: "mountpoints")
        }
    }

    /// The image of the root task's mount namespace, or the only one.
    private func imageName() throws -> ImageName? {
        let names = images.list(.mountpoints)
        guard !names.isEmpty else { return nil }
        if let id = try images.rootTaskIds()?[namespace: .mnt], names.contains(.mountpoints(id)) {
            return .mountpoints(id)
        }
        return names[0]
    }
}
