/// The namespaces a task can have of its own; raw values are the file names under /proc/PID/ns/.
public enum NamespaceKind: String, CaseIterable, Sendable {
    case pid, net, mnt, ipc, uts, user, cgroup, time

    /// The CLONE_NEW* flag that creates one (clone, unshare, setns); CRIU's images record
    /// namespace kinds by these bits.
    public var cloneFlag: CloneFlags {
        switch self {
        case .mnt: return .newNS
        case .cgroup: return .newCgroup
        case .uts: return .newUTS
        case .ipc: return .newIPC
        case .user: return .newUser
        case .pid: return .newPID
        case .net: return .newNet
        case .time: return .newTime
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

/// The flags of clone(2), unshare(2) and setns(2) (linux/sched.h).
public struct CloneFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let newTime = CloneFlags(rawValue: 0x0000_0080)
    public static let vm = CloneFlags(rawValue: 0x0000_0100)
    public static let fs = CloneFlags(rawValue: 0x0000_0200)
    public static let files = CloneFlags(rawValue: 0x0000_0400)
    public static let sighand = CloneFlags(rawValue: 0x0000_0800)
    public static let thread = CloneFlags(rawValue: 0x0001_0000)
    public static let newNS = CloneFlags(rawValue: 0x0002_0000)
    public static let sysvSem = CloneFlags(rawValue: 0x0004_0000)
    public static let newCgroup = CloneFlags(rawValue: 0x0200_0000)
    public static let newUTS = CloneFlags(rawValue: 0x0400_0000)
    public static let newIPC = CloneFlags(rawValue: 0x0800_0000)
    public static let newUser = CloneFlags(rawValue: 0x1000_0000)
    public static let newPID = CloneFlags(rawValue: 0x2000_0000)
    public static let newNet = CloneFlags(rawValue: 0x4000_0000)

    /// What a new thread shares with its creator, as pthread_create asks for it.
    public static let newThread: CloneFlags = [.vm, .fs, .files, .sighand, .thread, .sysvSem]

    /// The flag as the Int argument of a raw syscall.
    public var argument: Int { Int(truncatingIfNeeded: rawValue) }
}
