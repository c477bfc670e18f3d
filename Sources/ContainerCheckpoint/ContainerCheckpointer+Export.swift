import Foundation
import LinuxKernel
import CheckpointArchive

/// `checkpoint --export FILE`, made so that killing it at any moment loses nothing: the
/// container is paused, dumped with runc's --leave-running (the engine leaves a paused
/// container paused), described while still paused, packed, and only once the archive is
/// linked to FILE is it stopped (kill mode) or, with --leave-running, resumed as soon as its
/// root filesystem is read. A journal and a guard process finish or undo a run that dies.
extension ContainerCheckpointer {
    func exportSafely(_ request: Request, to export: String, state: Runc.State, podman: PodmanContainer?,
                      shm: ShmSnapshot?, progress: ProgressReporter?) throws -> String {
        let leaveRunning = request.runcFlags.contains("--leave-running")
        // Established connections survive only runc's own kill mode, which closes them while
        // the network is locked; frozen until after the archive they would be reset instead.
        let freezeFirst = leaveRunning || !request.runcFlags.contains("--tcp-established")
        let near = (export as NSString).deletingLastPathComponent
        let journal = CheckpointJournal(
            container: state.id, runc: runc.path, runcRoot: runc.root, export: export,
            staging: (near.isEmpty ? "." : near) + "/.ocicheckpoint-\(state.id)-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max)),
            stopsContainer: freezeFirst && !leaveRunning, resumesContainer: freezeFirst && state.status == "running", pid: getpid())
        let guardian = try CheckpointGuard(journal: CheckpointJournal.path(of: state.id, in: request.journalDirectory))
        defer { guardian.finish() }
        let held = try HeldJournal(journal, in: request.journalDirectory)
        defer { held.release() }
        killPoint("journaled")
        guard mkdir(journal.staging, 0o700) == 0, mkdir(journal.contentInStaging, 0o700) == 0 else {
            throw CheckpointError.errno("create the staging directory \(journal.staging)")
        }
        // runc hands its environment to the engine, which abandons the dump once this
        // process has died (Engine's DumpClient).
        setenv("OCICHECKPOINT_CLIENT", "\(getpid()):\(try ownStartTime())", 1)
        defer { unsetenv("OCICHECKPOINT_CLIENT") }
        do {
            try checkpointPaused(request, export: export, journal: journal, state: state, podman: podman, shm: shm, progress: progress)
        } catch {
            _ = journal.recover()
            guard FileManager.default.fileExists(atPath: journal.staging) else { throw error }
            throw CheckpointError(.invalidState, "\(error); the checkpoint of \(request.id) is kept in \(journal.contentInStaging)")
        }
        if journal.stopsContainer { runc.stop(state.id) }
        killPoint("stopped")
        try? FileManager.default.removeItem(atPath: journal.staging)
        return export
    }

    private func checkpointPaused(_ request: Request, export: String, journal: CheckpointJournal, state: Runc.State,
                                  podman: PodmanContainer?, shm: ShmSnapshot?, progress: ProgressReporter?) throws {
        let content = journal.contentInStaging
        if journal.resumesContainer { try runc.pause(state.id) }
        killPoint("paused")
        let flags = request.runcFlags + (journal.stopsContainer ? ["--leave-running"] : [])
        do {
            try runc.checkpoint(state.id, imagePath: content + "/" + CheckpointLayout.images, workPath: content, flags: flags)
        } catch let failure as CheckpointError {
            // Only the engine's log is worth keeping; the journal's undo resumes the container.
            let log = export + ".dump.log"
            try? FileManager.default.removeItem(atPath: log)
            let kept = (try? FileManager.default.moveItem(atPath: content + "/" + CheckpointLayout.dumpLog, toPath: log)) != nil
            let reason = failure.message.replacingOccurrences(of: " (log: \(content)/dump.log)", with: "")
            throw CheckpointError(failure.code, reason + (kept ? " (log: \(log))" : ""))
        }
        killPoint("dumped")
        if let podman {
            try describe(podman, bundle: state.bundle, shm: shm, into: content)
        } else {
            try describe(state, bundle: state.bundle, base: request.rootfsBase, into: content)
        }
        killPoint("described")
        if journal.resumesContainer && !journal.stopsContainer { try runc.resume(state.id) }
        try CheckpointArchive.pack(directory: content, to: journal.archiveInStaging, compression: request.compression,
                                   progress: progress, signingKey: request.signingKey)
        if let image = request.exportImage {
            try CheckpointImage.export(content, to: image, containerName: podman?.name ?? state.id, runtime: "runc",
                                       rootfsImage: podman.map { ($0.imageName, $0.imageID) }, signingKey: request.signingKey)
        }
        killPoint("packed")
        // A link, not a rename: it never replaces a file that appeared meanwhile, and the
        // journal's reader knows the archive at FILE by its inode.
        guard link(journal.archiveInStaging, export) == 0 else {
            if errno == EEXIST { throw CheckpointError(.busy, "archive \(export): already exists") }
            throw CheckpointError.errno("link the archive to \(export)")
        }
        killPoint("linked")
    }
}

/// This process's start time (field 22 of /proc/self/stat, after the parenthesised name),
/// which tells it apart from a later process with the same pid.
private func ownStartTime() throws -> UInt64 {
    guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let close = stat.lastIndex(of: ")"),
          let value = stat[stat.index(after: close)...].split(separator: " ").dropFirst(19).first.flatMap({ UInt64($0) }) else {
        throw CheckpointError(.invalidState, "/proc/self/stat: no start time")
    }
    return value
}

/// For tests: `OCICHECKPOINT_KILL_AT=<phase>` kills this process with SIGKILL there, as a
/// user's kill -9 would (phases: journaled, paused, dumped, described, packed, linked, stopped).
private func killPoint(_ phase: String) {
    if ProcessInfo.processInfo.environment["OCICHECKPOINT_KILL_AT"] == phase { kill(getpid(), SIGKILL) }
}
