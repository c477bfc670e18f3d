import Foundation
import LinuxKernel

/// A tmpfs's contents as CRIU keeps them: a gzip'ed tar made by the host's GNU tar, with
/// numeric owners, modes, device nodes, sparse files, hard links and xattrs.
enum TmpfsArchive {
    static func create(from directory: String, to image: String) throws {
        try tar(["--create", "--gzip", "--no-unquote", "--no-wildcards", "--one-file-system",
                 "--check-links", "--preserve-permissions", "--sparse", "--numeric-owner",
                 "--xattrs", "--xattrs-include=*", "--file", image, "--directory", directory, "."],
                what: "save the tmpfs contents into \(image)")
        let fd = open(image, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open \(image)") }
        defer { close(fd) }
        if fsync(fd) != 0 { throw CheckpointError.errno("fsync \(image)") }
    }

    static func extract(_ image: String, into directory: String) throws {
        try tar(["--extract", "--gzip", "--numeric-owner", "--preserve-permissions", "--same-owner",
                 "--xattrs", "--xattrs-include=*", "--file", image, "--directory", directory],
                what: "restore the tmpfs contents from \(image)")
    }

    static var tarPath: String {
        ["/usr/bin/tar", "/bin/tar"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/tar"
    }

    private static func tar(_ arguments: [String], what: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tarPath)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw CheckpointError(.notFound, "\(what): cannot run \(tarPath): \(error.localizedDescription)", cause: error)
        }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: message, as: UTF8.self).split(separator: "\n").suffix(3).joined(separator: "; ")
            throw CheckpointError(.kernel, "\(what): tar exited with \(process.terminationStatus): \(text)")
        }
    }
}
