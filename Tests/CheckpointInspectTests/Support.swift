// Support for the inspect tests: the CLI, the helper process tree (Helpers/inspect-tree.c)
// dumped for real by the CLI, and a podman-like layout around the images (config.dump,
// spec.dump, rootfs-diff.tar). Commands run through SystemTestSupport's Cmd.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

enum Env {
    static let packageRoot = Project.root
    static var binary: String { Project.binary }
    static let helperSource = packageRoot + "/Tests/CheckpointInspectTests/Helpers/inspect-tree.c"
    static let runc = "/usr/sbin/runc"
    static let busybox = "/bin/busybox"
    static var canDump: Bool { geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/cc") }
    static var hasRunc: Bool {
        canDump && FileManager.default.isExecutableFile(atPath: runc) && FileManager.default.isExecutableFile(atPath: busybox)
    }
}

extension Cmd {
    /// `ocicheckpoint ARGS`.
    static func cli(_ args: [String], timeout: Double = 120) -> Output { run([Env.binary] + args, timeout: timeout) }
}

/// Sizes of the regular files directly in `dir`, by name.
func fileSizes(_ dir: String) -> [String: UInt64] {
    var out: [String: UInt64] = [:]
    for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
        if let attrs = try? FileManager.default.attributesOfItem(atPath: dir + "/" + name),
           attrs[.type] as? FileAttributeType == .typeRegular, let size = attrs[.size] as? NSNumber {
            out[name] = size.uint64Value
        }
    }
    return out
}
