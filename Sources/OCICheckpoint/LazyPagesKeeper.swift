import ContainerCheckpoint
import CriuRPC
import Foundation
import LinuxKernel

/// A second process that holds a copy of every userfaultfd the lazy-pages daemon serves.
/// Were the daemon to die with pages still missing, the kernel would drop the last
/// reference with the daemon and every missing page would read as zero: a silently
/// wrong process. The keeper's copies keep the faults waiting instead, and when its
/// socket closes without "done" it SIGKILLs the restored tasks and their descendants.
final class LazyPagesKeeper {
    static let flag = "--keeper"
    private static let done = Array("done".utf8)
    private var socket: RPCSocket?

    /// Starts `ocicheckpoint lazy-pages --keeper` in a session of its own, its fd 0 our socket.
    /// `imagesDir` only names the keeper's command line after the daemon's.
    init(imagesDir: String) throws {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw CheckpointError.errno("lazy pages: keeper socketpair")
        }
        defer { close(ends[1]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, ends[1], 0)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // POSIX_SPAWN_SETSID (glibc's 0x80) is not imported into Swift.
        posix_spawnattr_setflags(&attr, 0x80)
        let argv = [Runc.selfPath, "lazy-pages", "-D", imagesDir, Self.flag]
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attr, cArgs, environ)
        if rc != 0 {
            close(ends[0])
            throw CheckpointError.errno("lazy pages: start the keeper \(argv[0])", rc)
        }
        socket = RPCSocket(fd: ends[0])
    }

    /// Hands the keeper a copy of `uffd`; `pid` is its task's pid on the host (what the keeper
    /// kills; in a container not the pid in the images), 0 for a forked child's.
    func hold(pid: Int32, uffd: Int32) {
        try? socket?.send(withUnsafeBytes(of: pid.littleEndian) { Array($0) }, fds: [uffd])
    }

    /// Every page arrived: the keeper lets go.
    func finish() {
        guard let socket else { return }
        try? socket.send(Self.done)
        close(socket.fd)
        self.socket = nil
    }

    /// The keeper's side, on fd 0: holds what arrives until "done"; on a bare close, kills.
    static func keep() -> Never {
        let socket = RPCSocket(fd: 0)
        var pids: [Int32] = []
        while let d = try? socket.receive() {
            if d.bytes == done { exit(0) }
            if d.bytes.count == 4 {
                let pid = d.bytes.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(as: Int32.self)) }
                // Never pid 1 and its descendants (every process): a pid of 1 can only be
                // one from the images, not the host's.
                if pid > 1 { pids.append(pid) }
            }
        }
        // Descendants first collected, then all killed: none can fork once stopped by SIGKILL.
        var victims = pids, i = 0
        while i < victims.count {
            victims += children(of: victims[i]).filter { !victims.contains($0) }
            i += 1
        }
        for p in victims where p > 1 { kill(p, SIGKILL) }
        FileHandle.standardError.write("lazy pages: the daemon ended before every page arrived: killed \(victims)\n".data(using: .utf8)!)
        exit(1)
    }

    private static func children(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { tid in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/children", encoding: .utf8)) ?? "")
                .split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }
}
