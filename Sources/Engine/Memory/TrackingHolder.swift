import Foundation
import LinuxKernel
import ProcFS

/// The write tracking of one tree between dumps: a userfaultfd per process, the ranges
/// registered on it, and the images directory whose pages it tracks writes since.
/// Dropping it closes the fds, which unprotects every area.
final class TrackedTree {
    struct Process { let startTime: UInt64; let fd: Int32; let ranges: [(UInt64, UInt64)] }
    var images: String
    private(set) var processes: [Int32: Process] = [:]

    init(images: String) { self.images = images }
    deinit { for p in processes.values { close(p.fd) } }

    func add(_ pid: Int32, _ p: Process) {
        if let old = processes.updateValue(p, forKey: pid), old.fd != p.fd { close(old.fd) }
    }

    /// The tracking of `pid` if it is still the process tracked (same start time).
    func process(_ pid: Int32, startTime: UInt64) -> Process? {
        guard let p = processes[pid], p.startTime == startTime else { return nil }
        return p
    }

    /// Hands the fd of `pid` over to the caller, who closes it.
    func release(_ pid: Int32) -> Process? { processes.removeValue(forKey: pid) }
}

/// Keeps a tree's write tracking alive between a pre-dump and the next dump: a small
/// process of ours (`ocicheckpoint mem-track-holder ROOT`, its own session) that holds the
/// userfaultfds and exits with the tree's root. The next dump takes the fds with
/// pidfd_getfd and kills it. The record under /run says where the fds are; it is removed
/// before the holder is touched, so a killed dump leaves no record of tracking it broke.
public enum TrackingHolder {
    public static let command = "mem-track-holder"
    static let directory = "/run/ocicheckpoint/track"
    static let pidfdSendSignal = 424

    private struct Record: Codable { var pid: Int32; var startTime: UInt64; var fd: Int32; var ranges: [[UInt64]] }
    private struct State: Codable { var holder: Int32; var holderStart: UInt64; var images: String; var processes: [Record] }

    static func recordPath(root: Int32) throws -> String {
        "\(directory)/\(root)-\(try TaskStat.read(pid: root, tid: nil).startTime).json"
    }

    /// The tracking the holder of `root`'s tree keeps, now ours; the holder is killed. Nil
    /// when there is none (or it cannot be taken: the tree is then dumped in full).
    static func take(root: Int32, log: Log) -> TrackedTree? {
        guard let path = try? recordPath(root: root), let data = FileManager.default.contents(atPath: path) else { return nil }
        unlink(path)
        guard let state = try? JSONDecoder().decode(State.self, from: data) else { return nil }
        guard case .success(let pidfd) = Syscall.result(SyscallNumber.pidfdOpen, Int(state.holder)) else { return nil }
        defer { close(Int32(pidfd)) }
        guard (try? TaskStat.read(pid: state.holder, tid: nil).startTime) == state.holderStart else { return nil }
        let tree = TrackedTree(images: state.images)
        defer { _ = Syscall.result(pidfdSendSignal, pidfd, Int(SIGKILL)) }
        for r in state.processes {
            guard case .success(let fd) = Syscall.result(SyscallNumber.pidfdGetfd, pidfd, Int(r.fd), 0) else {
                log.info("write tracking of pid \(r.pid) could not be taken from holder \(state.holder): the tree is dumped in full")
                return nil
            }
            tree.add(r.pid, .init(startTime: r.startTime, fd: Int32(fd), ranges: r.ranges.map { ($0[0], $0[1]) }))
        }
        return tree
    }

    /// Starts a holder for `tree`'s fds and records it; `tree` keeps its own copies (closed
    /// with it) so that tracking survives only through the holder.
    static func hand(_ tree: TrackedTree, root: Int32) throws {
        let path = try recordPath(root: root)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Nothing of ours but the fds: a caller reading our output must not wait on the holder.
        for std: Int32 in 0...2 { posix_spawn_file_actions_addopen(&actions, std, "/dev/null", O_RDWR, 0) }
        var records: [Record] = []
        // Copies above every slot first: a dup2 into a slot must not overwrite a source.
        let tracked = tree.processes.sorted(by: { $0.key < $1.key })
        var sources: [Int32] = []
        defer { sources.forEach { close($0) } }
        for (_, p) in tracked {
            let high = fcntl(p.fd, F_DUPFD_CLOEXEC, Int32(3 + tracked.count))
            if high < 0 { throw CheckpointError.errno("dup a userfaultfd for the holder") }
            sources.append(high)
        }
        for (i, (pid, p)) in tracked.enumerated() {
            let slot = Int32(3 + i)
            posix_spawn_file_actions_adddup2(&actions, sources[i], slot)
            records.append(Record(pid: pid, startTime: p.startTime, fd: slot, ranges: p.ranges.map { [$0.0, $0.1] }))
        }
        let exe = try ProcTree.link("/proc/self/exe")
        let holder = try CleanSpawn.start([exe, command, String(root), String(tracked.count)], actions: &actions,
                                          grouping: .session, what: "start the write-tracking holder \(exe)")
        do {
            let state = State(holder: holder, holderStart: try TaskStat.read(pid: holder, tid: nil).startTime, images: tree.images, processes: records)
            let temporary = path + ".\(getpid())"
            try JSONEncoder().encode(state).write(to: URL(fileURLWithPath: temporary))
            if rename(temporary, path) != 0 { throw CheckpointError.errno("rename \(temporary)") }
        } catch {
            Glibc.kill(holder, SIGKILL)
            throw error
        }
    }

    /// The holder's side: keeps its `count` fds (from 3) until the tree's root exits (or
    /// it is killed); any other fd it inherited (a caller's socket) is closed at once.
    public static func hold(root: Int32, count: Int32) {
        _ = Syscall.result(SyscallNumber.closeRange, Int(3 + count), Int(UInt32.max), 0)
        // Reaped by init: the run that started us is not waiting.
        guard case .success(let pidfd) = Syscall.result(SyscallNumber.pidfdOpen, Int(root)),
              let record = try? recordPath(root: root) else { return }
        var p = pollfd(fd: Int32(pidfd), events: Int16(POLLIN), revents: 0)
        while poll(&p, 1, -1) < 0 && errno == EINTR {}
        // The tree is gone: so is what its record points to.
        unlink(record)
    }
}
