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
        let pid = try CleanSpawn.start(argv, actions: &actions, grouping: ownProcessGroup ? .processGroup : .none, what: "start \(argv[0])")
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
