import Foundation
import LinuxKernel

/// GNU tar with its archive on a socket to us (`--file -`), its stderr kept for the
/// message. A socket rather than a pipe: sends with MSG_NOSIGNAL, so a tar that stops
/// reading early is an error to report, not a SIGPIPE that kills the engine.
enum TarPipe {
    /// Runs `tar ARGUMENTS` (which write the archive to stdout) and hands each block to `sink`.
    static func create(_ arguments: [String], what: String, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try run(arguments, what: what, archiveOn: 1) { socket in
            var failure: Error?
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while case .success(let n) = Syscall.valueOrErrno({ read(socket, &buffer, buffer.count) }), n > 0 {
                // After a failed sink, tar is drained (not left blocked) and reaped.
                guard failure == nil else { continue }
                do { try buffer.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<n])) } } catch { failure = error }
            }
            if let failure { throw failure }
        }
    }

    /// Runs `tar ARGUMENTS` (which read the archive from stdin), fed by `source`: it fills
    /// the buffer and returns the byte count, 0 at the end.
    static func extract(_ arguments: [String], what: String, source: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        try run(arguments, what: what, archiveOn: 0) { socket in
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try source($0) }
                if n == 0 { break }
                var sent = 0
                while sent < n {
                    let r = buffer.withUnsafeBytes { b in
                        Syscall.valueOrErrno { send(socket, b.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
                    }
                    // tar stopped reading: its exit status and message say why.
                    guard case .success(let k) = r else { return }
                    sent += k
                }
            }
        }
    }

    private static func run(_ arguments: [String], what: String, archiveOn childFd: Int32, talk: (Int32) throws -> Void) throws {
        var template = Array("/tmp/ocicheckpoint-tar-XXXXXX".utf8CString)
        let errors = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if errors < 0 { throw CheckpointError.errno("create a temporary file for tar's messages") }
        unlink(String(cString: template))
        defer { close(errors) }
        var ends: [Int32] = [-1, -1]
        try Syscall.retrying("socketpair for tar") {
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1 - childFd, "/dev/null", childFd == 0 ? O_WRONLY : O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, ends[1], childFd)
        posix_spawn_file_actions_adddup2(&actions, errors, 2)
        let argv = [TmpfsArchive.tarPath] + arguments
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, environ)
        close(ends[1])
        if rc != 0 {
            close(ends[0])
            throw CheckpointError.errno("run \(argv[0])", rc)
        }
        var failure: Error?
        do { try talk(ends[0]) } catch { failure = error }
        // The end of the archive for a reading tar; a writing tar is done already.
        close(ends[0])
        // As Engine's Command: a restore that reaps its children itself (under LXC's `criu
        // restore`) may take tar's status first; ECHILD then leaves the status 0.
        var raw: Int32 = 0
        _ = Syscall.valueOrErrno { waitpid(pid, &raw, 0) }
        if let failure { throw failure }
        let status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        guard status == 0 else {
            throw CheckpointError(.kernel, "\(what): tar exited with \(status): \(lastLines(of: errors))")
        }
    }

    private static func lastLines(of fd: Int32) -> String {
        var text = [UInt8](repeating: 0, count: 4096)
        let size = lseek(fd, 0, SEEK_END)
        let n = pread(fd, &text, text.count, max(0, size - off_t(text.count)))
        let lines = String(decoding: text.prefix(max(0, n)), as: UTF8.self).split(separator: "\n")
        return lines.suffix(2).joined(separator: "; ")
    }
}
