import Foundation
import LinuxKernel
import Images
import ProcFS

/// One restore, from the images it reads to the tasks it made: created once by the
/// Restorer and handed to every restore extension and step, so that what one step leaves
/// for another (a pty a mount reserved, a task to kill if a later step fails) travels
/// through here, never through statics.
public final class RestoreSession {
    public let options: RestoreOptions
    public let log: Log
    public let images: ImageDirectory
    /// The root task as the restorer sees it, once it exists (0 before).
    public internal(set) var rootPid: Int32
    /// Ptys a mount made before the tree's files (runc's /dev/console); the terminal
    /// restore takes their masters.
    public let ptys = PtyReservations()
    /// Every task and thread this restore created (host pids), killed if it fails.
    public private(set) var createdPids: [Int32] = []
    /// The restorer's resource limits and credentials, which every stub starts with.
    let inheritedRlimits: [(cur: UInt64, max: UInt64)]
    let restorerStatus: TaskStatus?
    private var rollBackActions: [() -> Void] = []

    public init(options: RestoreOptions, log: Log, rootPid: Int32 = 0) {
        self.options = options
        self.log = log
        self.rootPid = rootPid
        images = ImageDirectory(path: options.imagesDir)
        inheritedRlimits = (0..<16).map { res in
            var lim: (cur: UInt64, max: UInt64) = (0, 0)
            _ = withUnsafeMutablePointer(to: &lim) { try? Syscall.raw("getrlimit \(res)", SyscallNumber.prlimit64, 0, res, 0, Int(bitPattern: $0)) }
            return lim
        }
        restorerStatus = try? TaskStatus.read(pid: getpid())
    }

    deinit { ptys.release() }

    func created(_ pids: [Int32]) {
        createdPids += pids.filter { !createdPids.contains($0) }
    }

    /// `action` undoes something this restore made outside its own tasks; actions run
    /// newest first, after the created tasks are dead, if the restore fails.
    public func onRollBack(_ action: @escaping () -> Void) {
        rollBackActions.append(action)
    }

    /// After a failure: kills what was created, then runs the rollback actions.
    func rollBack() {
        TaskReaper.killAndReap(createdPids)
        log.info("killed the \(createdPids.count) tasks this restore created")
        for action in rollBackActions.reversed() { action() }
        rollBackActions.removeAll()
        ptys.release()
    }
}
