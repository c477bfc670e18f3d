import Foundation
import LinuxKernel

/// runc, driven with ocicheckpoint as its checkpoint engine (`runc --criu SELF ...`), so a
/// restored container is an ordinary runc container afterwards.
public struct Runc {
    /// What `runc state ID` tells.
    public struct State: Decodable {
        public let id: String
        public let pid: Int32
        public let status: String
        public let bundle: String
        public let rootfs: String
        public let created: String
    }

    public let path: String
    /// runc's --root (its state directory); nil for runc's default, /run/runc.
    public let root: String?
    /// The engine runc runs as `criu swrk`: this very binary.
    public let engine: String

    public init(path: String? = nil, root: String? = nil, engine: String = Runc.selfPath) throws {
        guard let found = path ?? Runc.find() else {
            throw CheckpointError(.notFound, "runc: not found on PATH (install Debian's runc, or pass --runc PATH)")
        }
        self.path = found
        self.root = root
        self.engine = engine
    }

    public static var selfPath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    static func find() -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        return (dirs + ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]).map { $0 + "/runc" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    private var global: [String] { [path] + (root.map { ["--root", $0] } ?? []) + ["--criu", engine] }

    /// The container's state, or nil when runc does not know the id.
    public func state(_ id: String) throws -> State? {
        let r = try Subprocess.run(global + ["state", id])
        guard r.ok else { return nil }
        let json = r.output.drop { $0 != "{" }
        do { return try JSONDecoder().decode(State.self, from: Data(json.utf8)) } catch {
            throw CheckpointError(.invalidState, "runc state \(id): unreadable answer: \(error)")
        }
    }

    /// runc, and the engine under it, in a process group of their own: a ^C meant for us
    /// must not kill the engine in the middle of a dump (its tasks would be left half-seized).
    public func checkpoint(_ id: String, imagePath: String, workPath: String, flags: [String]) throws {
        let r = try Subprocess.run(global + ["checkpoint", "--image-path", imagePath, "--work-path", workPath] + flags + [id],
                                   ownProcessGroup: true)
        if !r.ok { throw CheckpointError(.invalidState, "runc checkpoint \(id) failed: \(r.reason) (log: \(workPath)/dump.log)") }
    }

    /// Restores detached; the container inherits `stdio` as runc's own stdout and stderr.
    public func restore(_ id: String, bundle: String, imagePath: String, workPath: String, flags: [String], stdio: (out: Int32, err: Int32)?) throws {
        let argv = global + ["restore", "--detach", "--bundle", bundle, "--image-path", imagePath, "--work-path", workPath] + flags + [id]
        let r = try Subprocess.run(argv, stdio: stdio)
        if !r.ok {
            let why = stdio == nil ? r.reason : "exit status \(r.status)"
            throw CheckpointError(.invalidState, "runc restore \(id) failed: \(why) (log: \(workPath)/restore.log)")
        }
    }

    /// Freezes the container (runc derives "paused" from its cgroup freezer).
    public func pause(_ id: String) throws {
        let r = try Subprocess.run(global + ["pause", id])
        if !r.ok { throw CheckpointError(.invalidState, "runc pause \(id) failed: \(r.reason)") }
    }

    public func resume(_ id: String) throws {
        let r = try Subprocess.run(global + ["resume", id])
        if !r.ok { throw CheckpointError(.invalidState, "runc resume \(id) failed: \(r.reason)") }
    }

    /// Stops a container that may be paused, as runc's checkpoint does without
    /// --leave-running: every task gets SIGKILL while frozen (runc thaws after signalling, so
    /// none runs again), then runc forgets the container.
    public func stop(_ id: String) {
        _ = try? Subprocess.run(global + ["kill", "--all", id, "KILL"])
        delete(id)
    }

    public func delete(_ id: String) {
        _ = try? Subprocess.run(global + ["delete", "--force", id])
    }
}
