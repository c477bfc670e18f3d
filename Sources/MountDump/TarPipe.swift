import Foundation
import LinuxKernel

/// GNU tar with its archive on a pipe to us (`--file -`), its stderr kept for the message.
enum TarPipe {
    /// Runs `tar ARGUMENTS` and hands each block tar writes to `sink`.
    static func create(_ arguments: [String], what: String, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var template = Array("/tmp/ocicheckpoint-tar-XXXXXX".utf8CString)
        let errors = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if errors < 0 { throw CheckpointError.errno("create a temporary file for tar's messages") }
        unlink(String(cString: template))
        defer { close(errors) }
        let fds = try Syscall.pipe("pipe for tar")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors, 2)
        let argv = [TmpfsArchive.tarPath] + arguments
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, environ)
        close(fds[1])
        defer { close(fds[0]) }
        if rc != 0 { throw CheckpointError.errno("run \(argv[0])", rc) }

        var sinkError: Error?
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while case .success(let n) = Syscall.valueOrErrno({ read(fds[0], &buffer, buffer.count) }), n > 0 {
            // After a failed sink, tar is drained (not left blocked on a full pipe) and reaped.
            guard sinkError == nil else { continue }
            do { try buffer.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<n])) } } catch { sinkError = error }
        }
        var raw: Int32 = 0
        try Syscall.retrying("wait for tar") { waitpid(pid, &raw, 0) }
        if let sinkError { throw sinkError }
        let status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        guard status == 0 else {
            throw CheckpointError(.kernel, "\(what): tar exited with \(status): \(lastLines(of: errors))")
        }
    }

    private static func lastLines(of fd: Int32) -> String {
        var text = [UInt8](repeating: 0, count: 4096)
        let n = pread(fd, &text, text.count, 0)
        let lines = String(decoding: text.prefix(max(0, n)), as: UTF8.self).split(separator: "\n")
        return lines.suffix(2).joined(separator: "; ")
    }
}
