import ArgumentParser
import ContainerCheckpoint
import Foundation

/// The guard `checkpoint --export` starts for itself (CheckpointGuard): not for users.
struct CheckpointGuardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: CheckpointGuard.command,
        abstract: "Finish or undo a `checkpoint --export` that dies (started by it).",
        shouldDisplay: false)

    @Argument(help: "The run's journal.") var journal: String
    @Argument(help: "The run's pid.") var pid: Int32

    func run() throws {
        CheckpointGuard.watch(journal: journal, pid: pid) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    }
}
