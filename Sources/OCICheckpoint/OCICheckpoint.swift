import ArgumentParser
import LinuxKernel
import Foundation

@main
struct OCICheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        // Installed as `criu` (a symlink), the same commands answer under that name.
        commandName: (CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent } == "criu") ? "criu" : "ocicheckpoint",
        abstract: "Checkpoint/restore of Linux process trees in CRIU's image format.",
        subcommands: [Dump.self, PreDump.self, TrackingHolderCommand.self, Restore.self, LazyPages.self, Check.self, Swrk.self, Checkpoint.self, CheckpointGuardCommand.self, Inspect.self, HookCommand.self, PageServe.self, Migrate.self, Receive.self])

    /// CRIU's spellings (options before the command, --config, -V) first, then ArgumentParser.
    static func main() {
        if let fd = Swrk.fastPath(Array(CommandLine.arguments.dropFirst())) {
            Glibc.exit(Swrk.serve(fd: fd) ? 0 : 1)
        }
        do {
            switch try CriuArguments.normalize(Array(CommandLine.arguments.dropFirst())) {
            case .version(let text):
                print(text, terminator: "")
            case .arguments(let args):
                if !runDirectly(args) { main(args) }
            }
        } catch {
            FileHandle.standardError.write("Error: \(error)\n".data(using: .utf8)!)
            Glibc.exit(1)
        }
    }
}

extension OCICheckpoint {
    /// The engine's commands, parsed on their own rather than as part of the whole tree:
    /// ArgumentParser describes every subcommand (reflection, type names demangled) before
    /// it parses, ~7 ms of each start. Whatever they do not parse cleanly (help, a mistake)
    /// goes the usual way, for the usual message.
    private static func runDirectly(_ args: [String]) -> Bool {
        let direct: [String: ParsableCommand.Type] = [
            "dump": Dump.self, "pre-dump": PreDump.self, "restore": Restore.self,
            "lazy-pages": LazyPages.self, "page-server": PageServe.self,
        ]
        guard let name = args.first, let type = direct[name], var command = try? type.parse(Array(args.dropFirst())) else {
            return false
        }
        do { try command.run() } catch { exit(withError: error) }
        return true
    }
}

/// Options every engine command shares: CRIU's -o and -v.
struct LogOptions: ParsableArguments {
    @Option(name: [.customShort("o"), .customLong("log-file")], help: "Log file (relative paths are inside the image directory).")
    var logFile: String?

    @Option(name: [.customShort("v", allowingJoined: true)], help: "Log level 0..4.")
    var verbosity: Int = 2

    /// The name of the -o log when it lands directly in `images` (a signed manifest leaves it out).
    func logName(in images: String, workDir: String?) -> Set<String> {
        guard let logFile else { return [] }
        let path = logFile.hasPrefix("/") ? logFile : ((workDir ?? images) as NSString).appendingPathComponent(logFile)
        let parent = (path as NSString).deletingLastPathComponent
        guard let a = realpath(parent, nil), let b = realpath(images, nil) else { return [] }
        defer { free(a); free(b) }
        return String(cString: a) == String(cString: b) ? [(path as NSString).lastPathComponent] : []
    }

    /// The log; a relative -o is inside `directory` (the work directory, else the images').
    func log(directory: String) throws -> Log {
        guard let logFile else { return Log.silent }
        let path = logFile.hasPrefix("/") ? logFile : (directory as NSString).appendingPathComponent(logFile)
        return try Log(path: path, level: verbosity)
    }
}

/// Runs `body`; an error of the engine or of a module (image, /proc, OCI, registry
/// errors) becomes one line on stderr and exit status 1.
func OCICheckpoint_run(_ body: () throws -> Void) throws {
    do { try body() } catch let e where e is CheckpointError || e is CheckpointErrorConvertible {
        FileHandle.standardError.write("Error: \(CheckpointError(e).message)\n".data(using: .utf8)!)
        throw ExitCode(1)
    }
}
