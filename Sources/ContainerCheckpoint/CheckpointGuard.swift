import Foundation
import LinuxKernel
#if canImport(Glibc)
import Glibc
#endif

/// A second process (`ocicheckpoint checkpoint-guard`) that outlives a `checkpoint --export`
/// killed with SIGKILL: it holds the read end of a pipe whose write end only the run has,
/// and when the pipe closes without the word "done", it waits for the run's lock (runc and
/// the engine gone too) and finishes or undoes the run from its journal at once, so that a
/// container paused by the run is never left paused until someone runs ocicheckpoint again.
public final class CheckpointGuard {
    public static let command = "checkpoint-guard"
    private static let done = "done"
    private var writeEnd: Int32

    /// Starts the guard for the journal `path` of this process. It is in a session of its
    /// own, so a terminal's ^C or hangup that stops the run does not stop the guard; it
    /// reports on our stderr.
    public init(journal path: String) throws {
        var ends: [Int32] = [-1, -1]
        // Close-on-exec: runc and the engine must not hold the write end (pipe2 is not imported).
        guard pipe(&ends) == 0, fcntl(ends[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(ends[1], F_SETFD, FD_CLOEXEC) == 0 else {
            throw CheckpointError.errno("checkpoint guard: pipe")
        }
        defer { close(ends[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, ends[0], 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        do {
            _ = try CleanSpawn.start([Runc.selfPath, CheckpointGuard.command, path, String(getpid())], actions: &actions,
                                     grouping: .session, what: "checkpoint guard: start \(Runc.selfPath)")
        } catch {
            close(ends[1])
            throw error
        }
        writeEnd = ends[1]
    }

    /// The run ended by itself (done or undone): the guard leaves without doing anything.
    public func finish() {
        guard writeEnd >= 0 else { return }
        _ = CheckpointGuard.done.withCString { write(writeEnd, $0, strlen($0)) }
        close(writeEnd)
        writeEnd = -1
    }

    deinit { finish() }

    /// The guard's side: returns once the run has finished, or after undoing or finishing
    /// it; `report` gets the line that says what it found and did.
    public static func watch(journal path: String, pid: Int32, report: (String) -> Void) {
        var said = Data()
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let n = read(0, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            said.append(contentsOf: buffer[0..<n])
        }
        if String(decoding: said, as: UTF8.self) == done { return }
        // Killed before its journal was linked: only the temporary journal may be left.
        let temporary = HeldJournal.temporaryPath(path, pid: pid)
        let fd = open(temporary, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            if flock(fd, LOCK_EX) == 0 { unlink(temporary) }
            close(fd)
        }
        CheckpointJournal.recover(path, blocking: true, onlyPid: pid, report: report)
    }
}
