import Foundation
import LinuxKernel
import Images

/// CRIU's command line as criu reads it (getopt_long), brought into the form the commands'
/// parsers take: options may stand before the command (`criu -v4 -o dump.log dump -t 1`),
/// `--config FILE` adds a file of options, `-V`/`--version` answers at once, `-v`/`-vv`
/// count up from the default level, and `--manage-cgroups` may go without its mode.
enum CriuArguments {
    /// The engine's commands that take CRIU's options.
    static let commands: Set<String> = ["dump", "restore", "check", "pre-dump", "page-server", "lazy-pages", "cpuinfo"]

    /// Options that take their value as the next word (when not joined with `=`); needed
    /// to find the command word behind them.
    static let valued: Set<String> = [
        "-t", "--tree", "-D", "--images-dir", "-W", "--work-dir", "-o", "--log-file", "--config",
        "--pidfile", "--root", "--freeze-cgroup", "--cgroup-root", "--ext-mount-map", "--external",
        "--enable-fs", "--inherit-fd", "--lsm-profile", "--lsm-mount-context", "--feature",
        "--prev-images-dir", "--address", "--port", "--ps-socket", "--empty-ns", "--network-lock",
        "--timeout", "--ghost-limit", "--irmap-scan-path", "--cgroup-props", "--cgroup-props-file",
        "--cgroup-dump-controller", "--cgroup-yard", "--join-ns", "--action-script", "--status-fd",
        "--exec-cmd", "--veth-pair", "--skip-mnt", "--pre-dump-mode", "--ps", "--mntns-compat-mode",
    ]

    enum Parsed: Equatable {
        /// `-V`/`--version`: print this and exit.
        case version(String)
        case arguments([String])
    }

    /// CRIU prints "Version: X.Y[.Z]"; the same release answers the RPC's VERSION request
    /// and goes into checkpoint annotations (CriuRelease).
    static var versionText: String {
        let r = CriuRelease.self
        return "Version: \(r.major).\(r.minor)" + (r.sublevel != 0 ? ".\(r.sublevel)" : "") + "\n"
    }

    static func normalize(_ args: [String], readFile: (String) throws -> String = CriuArguments.read) throws -> Parsed {
        // Before the command: global options (moved behind it) or -V.
        var leading: [String] = []
        var i = 0
        while i < args.count, args[i].hasPrefix("-"), args[i] != "-" {
            let a = args[i]
            if a == "-V" || a == "--version" { return .version(versionText) }
            leading.append(a)
            if valued.contains(a), i + 1 < args.count { leading.append(args[i + 1]); i += 1 }
            i += 1
        }
        guard i < args.count else { return .arguments(try expand(args, readFile: readFile)) }
        let command = args[i]
        guard commands.contains(command) else {
            if !leading.isEmpty {
                throw CheckpointError(.invalidArgument, "options before '\(command)' are CRIU's form; \(command) takes its options after it")
            }
            return .arguments(args)
        }
        var rest = try expand(leading + Array(args[(i + 1)...]), readFile: readFile)
        if rest.contains("-V") || rest.contains("--version") { return .version(versionText) }
        rest = joinNegativeValues(rest.map(spellOut))
        return .arguments([command] + rest)
    }

    /// `--config FILE` replaced by the options in FILE (one a line, without the dashes, `#`
    /// comments), placed first so that the command line's own options win, as in CRIU.
    private static func expand(_ args: [String], readFile: (String) throws -> String) throws -> [String] {
        var fromFiles: [String] = []
        var out: [String] = []
        var i = 0
        while i < args.count {
            var path: String?
            if args[i] == "--config" {
                guard i + 1 < args.count else { throw CheckpointError(.invalidArgument, "--config: needs a file") }
                path = args[i + 1]; i += 1
            } else if args[i].hasPrefix("--config=") {
                path = String(args[i].dropFirst("--config=".count))
            }
            if let path { fromFiles += try configOptions(try readFile(path), file: path) } else { out.append(args[i]) }
            i += 1
        }
        return fromFiles + out
    }

    static func configOptions(_ text: String, file: String) throws -> [String] {
        var out: [String] = []
        for raw in text.split(separator: "\n") {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = words.first else { continue }
            let name = first.hasPrefix("-") ? first : (first.count == 1 ? "-" : "--") + first
            if name == "--config" { throw CheckpointError(.invalidArgument, "config file \(file): --config inside a config file") }
            out.append(name)
            let value = words.dropFirst().joined(separator: " ").trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            if !value.isEmpty { out.append(value) }
        }
        return out
    }

    /// CRIU's spellings that ArgumentParser reads otherwise: `-v`, `-vv` (2 + the count of
    /// v's), `--manage-cgroups` alone (soft, CRIU's default mode).
    private static func spellOut(_ a: String) -> String {
        if a.count >= 2, a.hasPrefix("-v"), a.dropFirst().allSatisfy({ $0 == "v" }) {
            return "-v\(min(4, 2 + a.count - 1))"
        }
        if a == "--manage-cgroups" { return "--manage-cgroups=soft" }
        return a
    }

    /// `-t -5` as `--tree=-5`, so that the value is judged (and refused) as a pid rather
    /// than read as an unknown option.
    private static func joinNegativeValues(_ args: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < args.count {
            if (args[i] == "-t" || args[i] == "--tree"), i + 1 < args.count,
               args[i + 1].hasPrefix("-"), Int(args[i + 1]) != nil {
                out.append("--tree=\(args[i + 1])"); i += 2; continue
            }
            out.append(args[i]); i += 1
        }
        return out
    }

    static func read(_ path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CheckpointError(.invalidArgument, "config file \(path): cannot be read")
        }
        return text
    }
}
