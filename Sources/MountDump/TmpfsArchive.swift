import Foundation
import Engine
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

    /// Through Engine's Command, not Foundation's Process: under `criu restore` (LXC) the
    /// restore's own child reaping left Process waiting for a tar that had exited.
    private static func tar(_ arguments: [String], what: String) throws {
        let (status, text) = try Command.run([tarPath] + arguments)
        guard status == 0 else {
            throw CheckpointError(.kernel, "\(what): tar exited with \(status): \(text)")
        }
    }
}
