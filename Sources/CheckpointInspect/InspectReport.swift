/// What `inspect` found, as one Codable document. `--format json` prints an array of these
/// (one per container), with checkpointctl's field names so its consumers read ours;
/// fields of our own are added, never renamed. Sizes are bytes, times microseconds.
/// Absent members leave their fields out (nil), never zero-filled.
public struct InspectReport: Codable, Equatable, Sendable {
    /// Container name (config.dump `name`, CRI-O/containerd annotations); "Container" when unknown.
    public var containerName: String
    /// config.dump `rootfsImageName`.
    public var image: String?
    /// config.dump `id`.
    public var id: String?
    /// The OCI runtime that ran the container (config.dump `runtime`, e.g. runc).
    public var runtime: String?
    /// As config.dump or the engine's annotation gives it.
    public var created: String?
    /// config.dump `checkpointedTime`, else the time inventory.img was written (RFC 3339).
    public var checkpointed: String?
    /// Podman, CRI-O or containerd (spec.dump annotation io.container.manager).
    public var engine: String?
    public var checkpointSize: Sizes
    public var statistics: Statistics?
    public var processTree: Process?
    public var fileDescriptors: [ProcessFiles]?
    public var mounts: [Mount]?
    /// Who signed the manifest: "ed25519 sha256:<SHA-256 of the raw public key>", or "not
    /// signed". What the checkpoint says, not verified (restore --verify does that).
    public var signer: String?

    public struct Sizes: Codable, Equatable, Sendable {
        /// Every regular file under checkpoint/.
        public var totalSize: UInt64
        /// checkpoint/pages-*.
        public var memoryPagesSize: UInt64
        /// rootfs-diff.tar; nil when the checkpoint has none.
        public var rootFsDiffSize: UInt64?
    }

    /// stats-dump (CRIU's dump_stats_entry).
    public struct Statistics: Codable, Equatable, Sendable {
        public var freezingTime: UInt32
        public var frozenTime: UInt32
        public var memdumpTime: UInt32
        public var memwriteTime: UInt32
        public var pagesScanned: UInt64
        public var pagesWritten: UInt64
        public var pagesSkippedParent: UInt64?
        public var pagesLazy: UInt64?
    }

    public struct Process: Codable, Equatable, Sendable {
        public var pid: UInt32
        public var ppid: UInt32
        public var pgid: UInt32
        public var sid: UInt32
        /// The task's comm (15 characters at most).
        public var command: String
        /// argv joined by spaces, read from the dumped memory.
        public var cmdline: String?
        /// argv as the process had it.
        public var arguments: [String]?
        /// alive, dead, stopped or zombie.
        public var taskState: String
        public var threads: [UInt32]
        public var environmentVariables: [String: String]?
        public var children: [Process]?
    }

    public struct ProcessFiles: Codable, Equatable, Sendable {
        public var pid: UInt32
        public var openFiles: [OpenFile]
    }

    public struct OpenFile: Codable, Equatable, Sendable {
        /// REG, PIPE, FIFO, UNIXSK, ... (CRIU's fd_types), or cwd / root.
        public var type: String
        /// The descriptor number, or "cwd" / "root".
        public var fd: String
        /// A path, or "pipe:[N]", "socket:[N]", "anon_inode:[eventfd]" as /proc shows them.
        public var path: String
    }

    public struct Mount: Codable, Equatable, Sendable {
        public var destination: String
        public var type: String
        public var source: String
        /// "mountpoints" (the dumped mount tree) or "spec.dump".
        public var origin: String
    }

    enum CodingKeys: String, CodingKey {
        case containerName = "container_name", image, id, runtime, created, checkpointed, engine
        case checkpointSize = "checkpoint_size", statistics, processTree = "process_tree"
        case fileDescriptors = "file_descriptors", mounts, signer
    }
}

extension InspectReport.Sizes {
    enum CodingKeys: String, CodingKey {
        case totalSize = "total_size", memoryPagesSize = "memory_pages_size", rootFsDiffSize = "root_fs_diff_size"
    }
}

extension InspectReport.Statistics {
    enum CodingKeys: String, CodingKey {
        case freezingTime = "freezing_time", frozenTime = "frozen_time", memdumpTime = "memdump_time"
        case memwriteTime = "memwrite_time", pagesScanned = "pages_scanned", pagesWritten = "pages_written"
        case pagesSkippedParent = "pages_skipped_parent", pagesLazy = "pages_lazy"
    }
}

extension InspectReport.Process {
    enum CodingKeys: String, CodingKey {
        case pid, ppid, pgid, sid, command, cmdline, arguments, taskState = "task_state", threads
        case environmentVariables = "environment_variables", children
    }
}

extension InspectReport.ProcessFiles {
    enum CodingKeys: String, CodingKey { case pid, openFiles = "open_files" }
}
