import Foundation
import LinuxKernel
import CheckpointArchive
import Images
#if canImport(Glibc)
import Glibc
#endif

/// What a `checkpoint --export` run is doing, written before it touches the container, so
/// that whoever finds the run dead (its guard, or any later `checkpoint`) can finish or undo
/// it. The file is also the run's lock: the run holds an flock on it that every program it
/// starts inherits (runc, and the engine under runc), so the lock is free only once none of
/// them is left to change the container.
public struct CheckpointJournal: Codable, Equatable {
    public var container: String
    public var runc: String
    public var runcRoot: String?
    public var export: String
    /// The run's own directory beside the archive: the images, then the archive before it
    /// is linked to `export`.
    public var staging: String
    /// Kill mode: the container is stopped once the archive is in place.
    public var stopsContainer: Bool
    /// The container was running: the run paused it and must resume it unless it stops it.
    public var resumesContainer: Bool
    public var pid: Int32

    public static let defaultDirectory = "/run/ocicheckpoint/checkpoints"
    public static func path(of container: String, in directory: String) -> String { directory + "/" + container + ".json" }

    var archiveInStaging: String { staging + "/archive" }
    var contentInStaging: String { staging + "/content" }

    /// Whether `export` is this run's archive: linked from the staging directory, or the
    /// staging directory already removed by a run that got that far.
    var archiveInPlace: Bool {
        var a = stat(), b = stat()
        guard stat(export, &a) == 0 else { return false }
        guard stat(archiveInStaging, &b) == 0 else { return !FileManager.default.fileExists(atPath: staging) }
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino
    }
}

/// A journal written and locked by this process.
public final class HeldJournal {
    public let journal: CheckpointJournal
    public let path: String
    private var fd: Int32

    /// Writes the journal under a temporary name, locks it, then links it into place: a
    /// journal is never visible unlocked while its run lives. Refused while another run of
    /// the same container holds its journal.
    public init(_ journal: CheckpointJournal, in directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = CheckpointJournal.path(of: journal.container, in: directory)
        let temporary = HeldJournal.temporaryPath(path, pid: journal.pid)
        // Not close-on-exec: runc and the engine inherit the lock.
        let fd = open(temporary, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw CheckpointError.errno("checkpoint journal \(temporary)") }
        defer { unlink(temporary) }
        do {
            guard flock(fd, LOCK_EX) == 0 else { throw CheckpointError.errno("lock the checkpoint journal \(temporary)") }
            let data = try JSONEncoder().encode(journal)
            guard data.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == data.count, fsync(fd) == 0 else {
                throw CheckpointError.errno("write the checkpoint journal \(temporary)")
            }
            guard link(temporary, path) == 0 else {
                if errno == EEXIST {
                    throw CheckpointError(.busy, "container \(journal.container): another checkpoint of it is running (journal \(path))")
                }
                throw CheckpointError.errno("checkpoint journal \(path)")
            }
        } catch {
            close(fd)
            throw error
        }
        self.journal = journal
        self.path = path
        self.fd = fd
    }

    static func temporaryPath(_ path: String, pid: Int32) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().path + "/." + url.lastPathComponent + ".\(pid)"
    }

    /// The run is over (done or undone): the journal goes, then the lock.
    public func release() {
        guard fd >= 0 else { return }
        unlink(path)
        close(fd)
        fd = -1
    }

    deinit { release() }
}

extension CheckpointJournal {
    /// Finds the runs whose lock is free (their process, runc and engine all gone), finishes
    /// or undoes each and removes its journal. One line per run, saying what was found and done.
    public static func recoverAbandoned(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var lines: [String] = []
        for name in names.sorted() {
            let path = directory + "/" + name
            if name.hasPrefix(".") {
                // A journal never linked into place: its run died before touching anything.
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                if fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 { unlink(path) }
                if fd >= 0 { close(fd) }
                continue
            }
            guard name.hasSuffix(".json"), let line = recover(path, blocking: false) else { continue }
            lines.append(line)
        }
        return lines
    }

    /// Takes the journal's lock (waiting for it with `blocking`), finishes or undoes its run,
    /// and says so through `report` before it removes the journal (whoever waits for the
    /// journal to go then finds the line written); nil when the run still lives (lock
    /// held), or another process recovered it.
    @discardableResult
    public static func recover(_ path: String, blocking: Bool, onlyPid: Int32? = nil, report: (String) -> Void = { _ in }) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard flock(fd, blocking ? LOCK_EX : LOCK_EX | LOCK_NB) == 0 else { return nil }
        // Recovered and unlinked by someone else while we waited.
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_nlink > 0 else { return nil }
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path)),
              let journal = try? JSONDecoder().decode(CheckpointJournal.self, from: data) else {
            let line = "ocicheckpoint: removed the unreadable checkpoint journal \(path)"
            report(line)
            unlink(path)
            return line
        }
        if let onlyPid, journal.pid != onlyPid { return nil }
        let line = journal.recover()
        report(line)
        unlink(path)
        return line
    }

    /// Finishes or undoes the run: with its archive in place, the container is stopped (kill
    /// mode) or resumed; without, it is resumed as the run found it. The staging directory
    /// goes, unless the container is gone and its images are all that is left of it.
    func recover() -> String {
        let complete = archiveInPlace
        var what = complete ? "its archive \(export) is complete" : "no archive was written"
        let runc = try? Runc(path: runc, root: runcRoot)
        let status = (try? runc?.state(container)).flatMap { $0?.status }
        switch (status, complete && stopsContainer) {
        case (nil, _):
            what += "; the container is gone"
        case (_, true):
            runc?.stop(container)
            what += "; the container was stopped as asked (it was \(status!))"
        case ("paused", false) where resumesContainer:
            let resumed = (try? runc?.resume(container)) != nil
            what += resumed ? "; the container was resumed" : "; the container could not be resumed (runc resume \(container) failed)"
        case (let s?, false):
            what += "; the container is \(s)"
        }
        let images = ImageDirectory(path: contentInStaging + "/" + CheckpointLayout.images)
        if !complete && status == nil && images.exists(.inventory) {
            what += "; its images are kept in \(contentInStaging)"
        } else if FileManager.default.fileExists(atPath: staging) {
            try? FileManager.default.removeItem(atPath: staging)
            what += "; removed \(staging)"
        }
        return "ocicheckpoint: a checkpoint of \(container) (pid \(pid)) was interrupted: \(what)"
    }
}
