import ArgumentParser
import ContainerRegistry
import LinuxKernel
import Foundation
import OCISpec
#if canImport(Glibc)
import Glibc
#endif

/// `ocicheckpoint hook`: an OCI hook (createRuntime and poststop) that keeps the hook
/// registry. It must never hold up or fail a container: whatever goes wrong is logged
/// and it exits 0, also when its own deadline passes.
struct HookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hook",
        abstract: "OCI hook: record the container (createRuntime) or forget it (poststop). Always exits 0.")

    @Option(help: "Registry directory (entries in DIR/containers, log in DIR/hook.log).")
    var registry: String = ContainerRegistry.defaultDirectory

    @Option(help: "The stage this hook runs at (createRuntime, poststop...); without it the state's status decides.")
    var stage: String?

    @Option(help: "The runtime's name (default: the parent process's executable).")
    var runtime: String?

    @Option(help: "Seconds after which the hook gives up and exits 0.")
    var timeout: Double = 5

    func run() {
        let log = HookLog(path: ContainerRegistry(directory: registry).logPath)
        HookLog.watchdog(seconds: timeout, log: log)
        let outcome: String
        do {
            let data = try StandardInput.read(deadline: Date().addingTimeInterval(timeout))
            let state = try State.decode(data, file: "stdin")
            let hookStage = try stage.map { try HookStage(json: .string($0), at: JSONPath([.key("--stage")])) }
            let hook = ContainerHook(registry: ContainerRegistry(directory: registry))
            switch try hook.handle(state, stage: hookStage, runtime: runtime ?? ContainerHook.parentRuntime()) {
            case .recorded(let r): outcome = "container \(r.id): recorded pid \(r.pid) (\(r.runtime)), bundle \(r.bundle)"
            case .removed(let id): outcome = "container \(id): removed"
            case .ignored(let why): outcome = "ignored: \(why)"
            }
        } catch {
            let message = "failed, the container goes on without a registry entry: \(error)"
            FileHandle.standardError.write(Data("ocicheckpoint hook: \(message)\n".utf8))
            log.write(message)
            return
        }
        log.write(outcome)
    }
}

/// Appends one line per event, syslog-style, to the registry's hook.log.
struct HookLog {
    let path: String

    func write(_ message: String) {
        let line = "\(ISO8601DateFormatter().string(from: Date())) ocicheckpoint-hook[\(getpid())]: \(message)\n"
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        _ = line.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// SIGALRM after `seconds` logs the timeout and exits 0, whatever the hook is doing.
    static func watchdog(seconds: Double, log: HookLog) {
        let message = "\(ISO8601DateFormatter().string(from: Date())) ocicheckpoint-hook[\(getpid())]: "
            + "gave up after \(seconds) s, the container goes on\n"
        watchdogLogFd = open(log.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        watchdogMessage = strdup(message)
        signal(SIGALRM) { _ in
            if watchdogLogFd >= 0, let m = watchdogMessage { _ = Glibc.write(watchdogLogFd, m, strlen(m)) }
            _exit(0)
        }
        var timer = itimerval()
        let total = max(seconds, 0.1) + 1   // a margin over the stdin deadline
        timer.it_value.tv_sec = Int(total)
        timer.it_value.tv_usec = Int((total - Double(Int(total))) * 1_000_000)
        setitimer(__itimer_which_t(ITIMER_REAL.rawValue), &timer, nil)
    }
}

// Read by the SIGALRM handler, which can capture nothing.
nonisolated(unsafe) private var watchdogLogFd: Int32 = -1
nonisolated(unsafe) private var watchdogMessage: UnsafeMutablePointer<CChar>?

enum StandardInput {
    struct Timeout: Error, CustomStringConvertible {
        var description: String { "stdin: no end of input before the deadline" }
    }

    /// Everything on stdin up to EOF; throws when EOF does not come by `deadline`.
    static func read(deadline: Date) throws -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw Timeout() }
            var pfd = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            // An interrupted poll counts as a timeout: the loop checks the deadline again.
            let ready = (try? Syscall.valueOrErrno({ poll(&pfd, 1, Int32(min(remaining * 1000, 60_000)) + 1) }).get()) ?? 0
            guard ready > 0 else { continue }
            let read = Syscall.valueOrErrno { buffer.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress, $0.count) } }
            guard case .success(let n) = read, n > 0 else { return data }
            data.append(contentsOf: buffer[0..<n])
        }
    }
}
