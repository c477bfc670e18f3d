import Foundation
import LinuxKernel
import SwiftProtobuf

/// The directory that holds one checkpoint's images, named as CRIU names them.
public struct ImageDirectory {
    public let path: String

    public init(path: String) { self.path = path }

    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    public func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name)) }

    public func writer(_ name: String, _ magic: ImageMagic) throws -> ImageWriter {
        do { return try ImageWriter(path: file(name), magic: magic) } catch {
            throw CheckpointError(.image, "\(error)", cause: error)
        }
    }

    public func reader(_ name: String, _ magic: ImageMagic) throws -> ImageReader {
        guard exists(name) else { throw CheckpointError(.image, "image \(file(name)): missing") }
        do { return try ImageReader(path: file(name), magic: magic) } catch {
            throw CheckpointError(.image, "\(error)", cause: error)
        }
    }

    /// Writes `messages` as one image and fsyncs it.
    public func write<M>(_ name: String, _ magic: ImageMagic, _ messages: [M]) throws where M: SwiftProtobuf.Message {
        let w = try writer(name, magic)
        do {
            for m in messages { try w.append(m) }
            try w.close()
        } catch let e as ImageError { throw e.checkpointError }
    }

    /// All records of one image; a damaged image is a one-line error naming the file.
    public func read<M>(_ name: String, _ magic: ImageMagic, as type: M.Type) throws -> [M] where M: SwiftProtobuf.Message {
        var r = try reader(name, magic)
        do { return try r.all(type) } catch let e as ImageError { throw e.checkpointError }
    }

    public func readOne<M>(_ name: String, _ magic: ImageMagic, as type: M.Type) throws -> M where M: SwiftProtobuf.Message {
        var r = try reader(name, magic)
        do { return try r.one(type) } catch let e as ImageError { throw e.checkpointError }
    }
}
