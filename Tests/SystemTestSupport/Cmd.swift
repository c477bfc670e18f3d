// Running a command to completion with its output captured in temporary files.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a finished command printed and how it ended.
public struct Output: CustomStringConvertible {
    public let argv: [String]
    /// Exit code; 128+signal when killed; -1 on timeout.
    public let status: Int32
    public let out: String
    public let err: String
    public init(argv: [String], status: Int32, out: String, err: String) {
        self.argv = argv; self.status = status; self.out = out; self.err = err
    }
    public var ok: Bool { status == 0 }
    public var description: String {
        "`\(argv.joined(separator: " "))` → \(status == -1 ? "timeout" : "status \(status)")\n--- stdout\n\(out)--- stderr\n\(err)"
    }
}

public enum Cmd {
    /// Runs argv (absolute argv[0]) with stdin /dev/null, stdout and stderr in temporary
    /// files, every other fd closed. A child still running at the timeout is killed.
    @discardableResult
    public static func run(_ argv: [String], timeout: Double = 60, extraEnv: [String: String] = [:]) -> Output {
        let (outFd, outPath) = tempFile()
        let (errFd, errPath) = tempFile()
        defer {
            close(outFd); close(errFd)
            unlink(outPath); unlink(errPath)
        }
        let pid: pid_t
        do {
            pid = try Spawn.start(argv, stdout: .fd(outFd), stderr: .fd(errFd), extraEnv: extraEnv)
        } catch {
            return Output(argv: argv, status: 127, out: "", err: "\(error)\n")
        }
        var status: Int32 = -1
        if let exit = Spawn.wait(pid, timeout: timeout) {
            status = exit.status
        } else {
            kill(pid, SIGKILL)
            _ = Spawn.wait(pid, timeout: 10)
        }
        return Output(argv: argv, status: status, out: readFile(outPath) ?? "", err: readFile(errPath) ?? "")
    }

    /// `/bin/sh -c script`.
    @discardableResult
    public static func sh(_ script: String, timeout: Double = 60) -> Output {
        run(["/bin/sh", "-c", script], timeout: timeout)
    }

    private static func tempFile() -> (Int32, String) {
        var template = Array("/tmp/oct-out-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        return (fd, String(cString: template))
    }
}

/// Runs a command that must succeed; returns its stdout.
@discardableResult
public func must(_ argv: [String], timeout: Double = 60) throws -> String {
    let o = Cmd.run(argv, timeout: timeout)
    guard o.ok else { throw TestFailure("\(o)") }
    return o.out
}
