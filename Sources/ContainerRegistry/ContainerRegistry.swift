import Foundation

/// Containers recorded by the OCI hook, one JSON file each under
/// `<directory>/containers/<id>.json`, for runtimes whose own state we do not read.
public struct ContainerRegistry: Sendable {
    public static let defaultDirectory = "/run/ocicheckpoint"

    public let directory: String
    public var containersDirectory: String { directory + "/containers" }
    /// Where the hook writes why it did nothing.
    public var logPath: String { directory + "/hook.log" }

    public init(directory: String = ContainerRegistry.defaultDirectory) {
        self.directory = directory
    }

    public func path(of id: String) -> String { containersDirectory + "/" + id + ".json" }

    /// Writes the record atomically: a reader sees the old entry or the new one, whole.
    public func record(_ record: ContainerRecord) throws {
        try checkContainerID(record.id)
        try FileManager.default.createDirectory(atPath: containersDirectory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(record)
        let target = path(of: record.id)
        let temporary = containersDirectory + "/.\(record.id).\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("create \(temporary)") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == data.count, synced, rename(temporary, target) == 0 else {
            let error = failure("write \(target)")
            unlink(temporary)
            throw error
        }
    }

    /// Removes the entry; an entry that is not there is not an error.
    public func remove(id: String) throws {
        try checkContainerID(id)
        if unlink(path(of: id)) != 0 && errno != ENOENT { throw failure("remove \(path(of: id))") }
    }

    /// The entry for `id` while its init process lives; a stale entry (process gone, or
    /// its pid reused by another process) is removed and reads as nil.
    public func entry(id: String) throws -> ContainerRecord? {
        try checkContainerID(id)
        guard let data = FileManager.default.contents(atPath: path(of: id)) else { return nil }
        let record: ContainerRecord
        do {
            record = try JSONDecoder().decode(ContainerRecord.self, from: data)
        } catch {
            throw ContainerRegistryError("container \(id): \(path(of: id)) is not a registry entry (\(error))")
        }
        guard InitProcess.alive(pid: record.pid, startTime: record.pidStartTime) else {
            try? remove(id: id)
            return nil
        }
        return record
    }

    /// Every live entry, by id; stale entries are removed on the way.
    public func entries() throws -> [ContainerRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: containersDirectory)) ?? []
        return try names.sorted().filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
            .compactMap { try entry(id: String($0.dropLast(5))) }
    }

    private func failure(_ what: String) -> ContainerRegistryError {
        ContainerRegistryError("hook registry: \(what): \(String(cString: strerror(errno)))")
    }
}
