import Foundation
import LinuxKernel
import CheckpointArchive

/// config.dump: who the container was. Keys follow podman's ContainerConfig where one
/// exists (id, name, rootfsImageName, runtime, createdTime), so checkpointctl shows them.
public struct ContainerConfigDump: Codable, Equatable {
    public var id: String
    public var name: String
    public var rootfsImageName: String = ""
    public var runtime: String
    public var createdTime: String
    public var checkpointedTime: String
    /// The engine that wrote the images.
    public var checkpointEngine: String = "ocicheckpoint"
    /// Set when rootfs-diff.tar holds only the changes against this directory; absent when
    /// it holds the whole root filesystem.
    public var rootfsBase: String?

    public init(id: String, name: String, runtime: String, createdTime: String, checkpointedTime: String, rootfsBase: String?) {
        self.id = id; self.name = name; self.runtime = runtime
        self.createdTime = createdTime; self.checkpointedTime = checkpointedTime; self.rootfsBase = rootfsBase
    }

    public static func read(from dir: String) throws -> ContainerConfigDump {
        let path = dir + "/" + CheckpointLayout.config
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError(.image, "\(path): missing (not a checkpoint archive of a container)")
        }
        do { return try JSONDecoder().decode(ContainerConfigDump.self, from: data) } catch {
            throw CheckpointError(.image, "\(path): not a container configuration: \(error)")
        }
    }

    public func write(to dir: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeFile(dir + "/" + CheckpointLayout.config, try enc.encode(self))
    }

    public static func now() -> String { ISO8601DateFormatter().string(from: Date()) }
}

func writeFile(_ path: String, _ data: Data) throws {
    do { try data.write(to: URL(fileURLWithPath: path)) } catch {
        throw CheckpointError(.invalidArgument, "write \(path): \(error.localizedDescription)")
    }
}
