/// The namespaces a task can have of its own; raw values are the file names under /proc/PID/ns/.
public enum NamespaceKind: String, CaseIterable, Sendable {
    case pid, net, mnt, ipc, uts, user, cgroup, time

    /// The CLONE_NEW* flag that creates one, as CRIU's images record namespace kinds.
    public var cloneFlag: UInt32 {
        switch self {
        case .mnt: return 0x0002_0000
        case .cgroup: return 0x0200_0000
        case .uts: return 0x0400_0000
        case .ipc: return 0x0800_0000
        case .user: return 0x1000_0000
        case .pid: return 0x2000_0000
        case .net: return 0x4000_0000
        case .time: return 0x0000_0080
        }
    }

    /// pid and time namespaces change for children only, through these extra links.
    public var forChildrenName: String? {
        switch self {
        case .pid: return "pid_for_children"
        case .time: return "time_for_children"
        default: return nil
        }
    }
}
