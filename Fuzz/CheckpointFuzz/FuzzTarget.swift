import CheckpointArchive
import Engine
import Foundation
import Images
import LinuxKernel
import SwiftProtobuf

/// What one fuzz input goes through. Errors are the expected outcome of most inputs; only
/// a trap, a sanitizer report or a hang is a finding.
enum FuzzTarget: String, CaseIterable {
    /// Every image decoded by the catalogue's message, then the whole directory loaded and
    /// validated as a restore does before it creates anything.
    case images
    /// A checkpoint archive listed, its signer read and unpacked (manifest checked), and the
    /// same bytes extracted as a rootfs-diff tar.
    case archive

    static var scratch: String = {
        // tmpfs: every input is written out as files, and a disk would be the bottleneck.
        let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        var t = Array("\(base)/checkpoint-fuzz-XXXXXX".utf8CString)
        let d = t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        atexit { if let d = FuzzTarget.scratchPath { try? FileManager.default.removeItem(atPath: d) } }
        scratchPath = d
        return d
    }()
    nonisolated(unsafe) private static var scratchPath: String?

    /// FUZZ_TARGET names it; images by default.
    static let current: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? "images"
        guard let t = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("FUZZ_TARGET=\(name): one of \(allCases.map(\.rawValue))\n".utf8))
            exit(2)
        }
        return t
    }()

    func run(_ data: Data) {
        switch self {
        case .images: Self.images(data)
        case .archive: Self.archive(data)
        }
    }

    private static func images(_ data: Data) {
        let path = scratch + "/img"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let input = ImageDirectoryInput(data)
        input.write(into: path)
        let dir = ImageDirectory(path: path)
        for f in input.files {
            guard let image = ImageName(fileName: f.name), let message = image.kind.message else { continue }
            _ = try? decodeAll(dir, image, message)
        }
        _ = try? dir.validateForRestore()
    }

    private static func decodeAll<M: SwiftProtobuf.Message>(_ dir: ImageDirectory, _ image: ImageName, _ type: M.Type) throws -> Int {
        var reader = try dir.reader(image)
        var count = 0
        do {
            // pagemap images start with their head; the rest are the kind's records.
            if image.kind == ImageName.pagemap(1).kind { _ = try reader.one(PagemapHead.self) }
            while try reader.next(type) != nil { count += 1 }
        } catch let e as ImageError { throw e.checkpointError }
        return count
    }

    private static func archive(_ data: Data) {
        let file = scratch + "/input.tar"
        ImageDirectoryInput.write(data, size: data.count, to: file)
        defer { unlink(file) }
        _ = try? CheckpointArchive.list(file)
        _ = try? CheckpointArchive.signer(of: file)
        for into in [scratch + "/unpacked", scratch + "/rootfs"] {
            try? FileManager.default.removeItem(atPath: into)
        }
        _ = try? CheckpointArchive.unpack(file, into: scratch + "/unpacked")
        try? FileManager.default.createDirectory(atPath: scratch + "/rootfs", withIntermediateDirectories: true)
        try? TarFile.extract(file, into: scratch + "/rootfs")
        for into in [scratch + "/unpacked", scratch + "/rootfs"] {
            try? FileManager.default.removeItem(atPath: into)
        }
    }
}
