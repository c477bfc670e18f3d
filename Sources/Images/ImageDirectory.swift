import Foundation
import LinuxKernel
import SwiftProtobuf

/// The directory that holds one checkpoint's images. Images are named by the catalogue
/// (`ImageName`, `ImageKind`), which also gives each its magic: `images.write(.core(pid), [core])`.
public struct ImageDirectory {
    public let path: String

    public init(path: String) { self.path = path }

    /// Files beside the images: runc's record of the container's stdio, which its restore
    /// reads before it starts the engine; and the mark of a directory whose last images are
    /// still on their way (IncomingImages in the engine).
    public static let runcDescriptors = "descriptors.json"
    public static let incomingMark = "incoming"

    /// The path of one image, for raw images (pages, tarballs) and messages.
    public func file(_ image: ImageName) -> String { (path as NSString).appendingPathComponent(image.fileName) }

    public func exists(_ image: ImageName) -> Bool { access(file(image), F_OK) == 0 }

    /// The images of `kind` in the directory, by id (mountpoints-N.img of each namespace).
    public func list(_ kind: ImageKind) -> [ImageName] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        // Parsed as `kind` first (cheap), then kept only where no earlier kind of the
        // catalogue claims the name (pages-%d.img spells pages-%u.img's names).
        return names.compactMap { ImageName(fileName: $0, kind: kind) }.filter { ImageName(fileName: $0.fileName)?.kind == kind }
            .sorted { ($0.id ?? 0) < ($1.id ?? 0) }
    }

    private func magic(_ image: ImageName) throws -> ImageMagic {
        guard let magic = image.kind.magic else {
            throw CheckpointError(.image, "image \(file(image)): a raw image, without records")
        }
        return magic
    }

    private func expect<M>(_ type: M.Type, in image: ImageName) {
        assert(image.kind.message.map { ObjectIdentifier($0) == ObjectIdentifier(type) } ?? true,
               "\(image) holds \(image.kind.message.map { "\($0)" } ?? "raw data"), not \(type)")
    }

    public func writer(_ image: ImageName) throws -> ImageWriter {
        let magic = try magic(image)
        do { return try ImageWriter(path: file(image), magic: magic) } catch {
            throw CheckpointError(.image, "\(error)", cause: error)
        }
    }

    public func reader(_ image: ImageName) throws -> ImageReader {
        let magic = try magic(image)
        guard exists(image) else { throw CheckpointError(.image, "image \(file(image)): missing") }
        do { return try ImageReader(path: file(image), magic: magic) } catch {
            throw CheckpointError(.image, "\(error)", cause: error)
        }
    }

    /// Writes `messages` as one image (not synced: the dump syncs the directory's
    /// filesystem once, before its inventory).
    public func write<M>(_ image: ImageName, _ messages: [M]) throws where M: SwiftProtobuf.Message {
        expect(M.self, in: image)
        let w = try writer(image)
        do {
            for m in messages { try w.append(m) }
            try w.close()
        } catch let e as ImageError { throw e.checkpointError }
    }

    /// All records of one image; a damaged image is a one-line error naming the file.
    public func read<M>(_ image: ImageName, as type: M.Type) throws -> [M] where M: SwiftProtobuf.Message {
        expect(type, in: image)
        var r = try reader(image)
        do { return try r.all(type) } catch let e as ImageError { throw e.checkpointError }
    }

    public func readOne<M>(_ image: ImageName, as type: M.Type) throws -> M where M: SwiftProtobuf.Message {
        expect(type, in: image)
        var r = try reader(image)
        do { return try r.one(type) } catch let e as ImageError { throw e.checkpointError }
    }
}
