import Foundation
import Images

/// A fuzz input for the image target: a whole image directory as a flat list of files,
/// `[name length u8][name][size u32 LE][bytes]`, so a mutation can touch any image and the
/// cross-image checks see it. Raw page images carry only their size (the validation reads
/// no page), written as a sparse file.
struct ImageDirectoryInput {
    struct File { let name: String; let contents: Data?; let size: Int }
    var files: [File] = []

    static let maxSparseSize = 1 << 30

    init(_ data: Data) {
        var bytes = data[...]
        while let nameLength = bytes.popFirst() {
            guard bytes.count >= Int(nameLength) + 4 else { return }
            let name = String(decoding: bytes.prefix(Int(nameLength)), as: UTF8.self)
            bytes = bytes.dropFirst(Int(nameLength))
            let size = Int(bytes.prefix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            bytes = bytes.dropFirst(4)
            // Only names of the catalogue, so that nothing is written outside the directory.
            guard let image = ImageName(fileName: name), image.fileName == name else { continue }
            if image.kind.magic == nil {
                files.append(File(name: name, contents: nil, size: min(size, Self.maxSparseSize)))
            } else {
                let body = Data(bytes.prefix(size))
                bytes = bytes.dropFirst(size)
                files.append(File(name: name, contents: body, size: body.count))
            }
        }
    }

    /// The encoding of a real image directory: how the seeds are made.
    static func encode(directory: String) throws -> Data {
        var out = Data()
        for name in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() {
            guard let image = ImageName(fileName: name), name.utf8.count < 256 else { continue }
            let path = directory + "/" + name
            let raw = image.kind.magic == nil
            let size = raw ? (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
                           : (FileManager.default.contents(atPath: path) ?? Data()).count
            out.append(UInt8(name.utf8.count))
            out.append(contentsOf: Array(name.utf8))
            withUnsafeBytes(of: UInt32(truncatingIfNeeded: size).littleEndian) { out.append(contentsOf: $0) }
            if !raw { out.append(FileManager.default.contents(atPath: path) ?? Data()) }
        }
        return out
    }

    /// Writes the files into `directory`, emptied first; plain writes, as Foundation's
    /// atomic ones (a temporary file, fsync, rename) would dominate each run.
    func write(into directory: String) {
        for old in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            unlink(directory + "/" + old)
        }
        for f in files { Self.write(f.contents, size: f.size, to: directory + "/" + f.name) }
    }

    /// `contents`, or a sparse file of `size` bytes.
    static func write(_ contents: Data?, size: Int, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        guard let contents else { _ = ftruncate(fd, off_t(size)); return }
        _ = contents.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }
}
