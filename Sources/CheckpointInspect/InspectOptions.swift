/// What `inspect` shows beyond the summary (container, image, runtime, times, sizes),
/// after checkpointctl's `inspect` flags.
public struct InspectOptions: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable { case tree, json }

    /// The process tree: pid, comm, state, threads.
    public var psTree = false
    /// Each process's argv, read from its dumped memory (needs mm-, pagemap- and pages- images).
    public var commandLines = false
    /// Each process's environment, read from its dumped memory.
    public var environment = false
    /// Open files per process (fd, type, path) plus cwd and root.
    public var files = false
    /// Mount points: from mountpoints-N.img, else from spec.dump's mounts.
    public var mounts = false
    /// Dump statistics from stats-dump.
    public var stats = false
    /// Show only the subtree of this pid (in the tree's own pid namespace).
    public var pid: UInt32?
    public var format = Format.tree

    public init() {}

    /// Everything (checkpointctl's --all).
    public static var all: InspectOptions {
        var o = InspectOptions()
        o.psTree = true; o.commandLines = true; o.environment = true
        o.files = true; o.mounts = true; o.stats = true
        return o
    }

    /// Whether the process tree is read at all: asked for, or needed to hang details on.
    var wantsProcesses: Bool { psTree || commandLines || environment || files || pid != nil }
    var readsMemory: Bool { commandLines || environment }
}
