import Foundation

/// posix_spawn with the signal state a new program expects: nothing blocked, every
/// disposition default (we block and ignore signals a child must not inherit).
public enum CleanSpawn {
    public enum Grouping { case none, processGroup, session }

    /// Starts `argv` (argv[0] an absolute path) with `actions`; returns its pid.
    public static func start(_ argv: [String], actions: inout posix_spawn_file_actions_t, grouping: Grouping = .none,
                             what: @autoclosure () -> String) throws -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setpgroup(&attr, 0)
        // POSIX_SPAWN_SETSID (glibc's 0x80) is not imported into Swift.
        let group: Int32 = switch grouping { case .none: 0; case .processGroup: POSIX_SPAWN_SETPGROUP; case .session: 0x80 }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | group))
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attr, cArgs, environ)
        if rc != 0 { throw CheckpointError.errno(what(), rc) }
        return pid
    }
}
