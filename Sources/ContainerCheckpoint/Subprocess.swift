import Foundation
import LinuxKernel
#if canImport(Glibc)
import Glibc
#endif

/// Runs helper programs (runc, tar) with posix_spawn and waitpid. Foundation's Process is
/// avoided: a container that `runc restore -d` leaves running inherits runc's stdio, so a
/// pipe to runc would never reach EOF.
enum Subprocess {
    struct Result {
        let status: Int32
        /// Standard error (and output when captured), for the error message.
        let output: String
        var ok: Bool { status == 0 }
        /// The last non-empty line: runc prints its reason there.
        var reason: String {
            output.split(separator: "\n").last.map(String.init) ?? "exit status \(status)"
        }
    }

    /// Runs `argv` (argv[0] absolute) with stdin from /dev/null and stdout/stderr into a
    /// temporary file, or into `stdio` when given (the restored container inherits those).
    /// With `ownProcessGroup`, a terminal's ^C reaches only us, not the program.
    static func run(_ argv: [String], stdio: (out: Int32, err: Int32)? = nil, ownProcessGroup: Bool = false) throws -> Result {
        var template = Array("/tmp/ocicheckpoint-out-XXXXXX".utf8CString)
        let capture = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if capture < 0 { throw CheckpointError.errno("create a temporary file for \(argv[0])'s output") }
        let capturePath = String(cString: template)
        unlink(capturePath)
        defer { close(capture) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdio?.out ?? capture, 1)
        posix_spawn_file_actions_adddup2(&actions, stdio?.err ?? capture, 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (ownProcessGroup ? POSIX_SPAWN_SETPGROUP : 0)))
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attr, cArgs, environ)
        if rc != 0 { throw CheckpointError.errno("start \(argv[0])", rc) }
        var raw: Int32 = 0
        try Syscall.retrying("wait for \(argv[0])") { waitpid(pid, &raw, 0) }
        let status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        lseek(capture, 0, SEEK_SET)
        var data = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(capture, &buf, buf.count)
            if n <= 0 { break }
            data.append(contentsOf: buf[0..<n])
        }
        return Result(status: status, output: String(decoding: data, as: UTF8.self))
    }
}
