// Starting and reaping the test's own child processes. posix_spawn and waitpid of our
// own, not Foundation's Process: its child monitor does not survive the ptrace stops of a
// seize, and a container started with -d keeps the runtime's stdio, so a pipe would
// never reach EOF.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a child ended, as waitpid reports it.
public struct WaitStatus: CustomStringConvertible, Sendable {
    public let raw: Int32
    public init(raw: Int32) { self.raw = raw }
    public var exited: Bool { raw & 0x7f == 0 }
    public var code: Int32 { (raw >> 8) & 0xff }
    public var signal: Int32 { raw & 0x7f }
    /// The shell's number: the exit code, or 128+signal when killed.
    public var status: Int32 { exited ? code : 128 + signal }
    public var description: String { exited ? "exit \(code)" : "signal \(signal)" }
}

/// Where a child's stdout or stderr goes.
public enum Redirect {
    /// A file, created when missing, appended to or truncated.
    case file(String, append: Bool)
    /// One of our descriptors.
    case fd(Int32)
    /// Wherever the child's stdout goes (for stderr).
    case stdout
}

public enum Spawn {
    /// Starts argv (absolute argv[0]) with stdin from `stdin`, stdout and stderr as given,
    /// `fds` (child's number → ours) passed on, every other descriptor closed, the signal
    /// mask empty and every disposition default. The caller reaps the child.
    public static func start(_ argv: [String], stdin: String = "/dev/null", stdout: Redirect,
                             stderr: Redirect = .stdout, fds: [Int32: Int32] = [:],
                             extraEnv: [String: String] = [:]) throws -> pid_t {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, stdin, O_RDONLY, 0)
        redirect(&fa, 1, stdout)
        redirect(&fa, 2, stderr)
        // dup2 onto the same number would keep close-on-exec: go through another number.
        var moved: [Int32] = []
        defer { moved.forEach { close($0) } }
        for (target, source) in fds.sorted(by: { $0.key < $1.key }) {
            var src = source
            if source == target {
                src = fcntl(source, F_DUPFD_CLOEXEC, 10)
                moved.append(src)
            }
            posix_spawn_file_actions_adddup2(&fa, src, target)
        }
        // glibc 2.34+; not imported into Swift, so looked up.
        if let closeFrom { _ = closeFrom(&fa, max(3, (fds.keys.max() ?? 0) + 1)) }

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var env = ProcessInfo.processInfo.environment
        for (k, v) in extraEnv { env[k] = v }
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &fa, &attr, cArgs, cEnv)
        guard rc == 0 else { throw TestFailure("posix_spawn \(argv[0]): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Polls waitpid until the child ends; nil at the timeout (the child is left alone).
    public static func wait(_ pid: pid_t, timeout: Double) -> WaitStatus? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            var raw: Int32 = 0
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid { return WaitStatus(raw: raw) }
            if r < 0 && errno != EINTR { return nil }
            if Date() > deadline { return nil }
            usleep(5_000)
        }
    }

    private static func redirect(_ fa: inout posix_spawn_file_actions_t, _ fd: Int32, _ to: Redirect) {
        switch to {
        case .file(let path, let append):
            posix_spawn_file_actions_addopen(&fa, fd, path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o644)
        case .fd(let ours):
            posix_spawn_file_actions_adddup2(&fa, ours, fd)
        case .stdout:
            posix_spawn_file_actions_adddup2(&fa, 1, fd)
        }
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let closeFrom: CloseFrom? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(sym, to: CloseFrom.self)
    }()
}
