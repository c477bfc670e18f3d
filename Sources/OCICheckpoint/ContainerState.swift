import CgroupDump
import Engine
import LinuxKernel
import MountDump
import NamespaceDump
import Images

/// The parts of a dump and restore beyond the process tree: mount tree, namespaces and
/// cgroups. Each writes nothing for a tree that shares them with the dumper.
enum ContainerState {
    static func dumpExtensions() -> [DumpExtension] {
        [NamespaceImagesDump(), CgroupsDump(), MountNamespaceDump()]
    }

    /// Cgroups first (the root task joins them before it forks), then uts/ipc/net/time,
    /// then the mount tree, whose pivot_root is the last step before tasks are rebuilt.
    static func restoreExtensions(emptyNamespaces: UInt64 = 0, cgroupMode: CgroupManageMode = .soft) -> [RestoreExtension] {
        [CgroupsDump(mode: cgroupMode), NamespaceImagesDump(emptyNamespaces: emptyNamespaces), MountNamespaceDump()]
    }

    static func freezer(_ path: String) throws -> TreeFreezer { try CgroupTreeFreezer(path: path) }
}

extension CgroupManageMode {
    /// CRIU's --manage-cgroups modes (criu_cg_mode) as the cgroup restore's.
    init(criu mode: CriuCgMode) throws {
        switch mode {
        case .ignore: self = .ignore
        case .props: self = .props
        case .soft, .default: self = .soft
        case .full: self = .full
        case .strict: self = .strict
        default:
            throw CheckpointError(.unsupported, "--manage-cgroups=none (existing cgroups, no properties) is not supported: use props or ignore")
        }
    }
}
