import Foundation
import CArchive
import LinuxKernel

/// A tmpfs's contents as CRIU keeps them: a gzip'ed tar made by the host's GNU tar, with
/// numeric owners, modes, device nodes, sparse files, hard links and xattrs.
enum TmpfsArchive {
    /// GNU tar writes the tar stream to us and we gzip it (libarchive's gzip filter over a
    /// raw stream): tar's own --gzip would start `sh -c gzip` and gzip, two more processes
    /// for each of a container's five tmpfs while it is frozen (CRIU pays them). tar is
    /// started directly, not through Foundation's Process: under `criu restore` (LXC) the
    /// restore's own child reaping left Process waiting for a tar that had exited.
    static func create(from directory: String, to image: String) throws {
        let fd = open(image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw CheckpointError.errno("create \(image)") }
        defer { close(fd) }
        let gzip = try GzipStream(fd: fd, what: image)
        try TarPipe.create(["--create", "--no-unquote", "--no-wildcards", "--one-file-system",
                            "--check-links", "--preserve-permissions", "--sparse", "--numeric-owner",
                            "--xattrs", "--xattrs-include=*", "--file", "-", "--directory", directory, "."],
                           what: "save the tmpfs contents into \(image)") { try gzip.write($0) }
        try gzip.close()
    }

    /// The image's gzip is undone here, for tar's stdin, for the same reason as at dump.
    static func extract(_ image: String, into directory: String) throws {
        let gunzip = try GunzipStream(path: image)
        try TarPipe.extract(["--extract", "--numeric-owner", "--preserve-permissions", "--same-owner",
                             "--xattrs", "--xattrs-include=*", "--file", "-", "--directory", directory],
                            what: "restore the tmpfs contents from \(image)") { try gunzip.read(into: $0) }
    }

    static var tarPath: String {
        ["/usr/bin/tar", "/bin/tar"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/tar"
    }
}

/// One gzip member written to a file descriptor: libarchive's raw format passes the bytes
/// through its gzip filter unchanged, so any gzip reader (tar --gzip) takes it.
private final class GzipStream {
    private let handle: OpaquePointer
    private let what: String

    init(fd: Int32, what: String) throws {
        handle = archive_write_new()
        self.what = what
        archive_write_set_format_raw(handle)
        archive_write_add_filter_gzip(handle)
        archive_write_set_bytes_per_block(handle, 1 << 16)
        archive_write_set_bytes_in_last_block(handle, 1)
        try check(archive_write_open_fd(handle, fd), "open")
        let entry = archive_entry_new()
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, "tmpfs.tar")
        archive_entry_set_filetype(entry, UInt32(Glibc.S_IFREG))
        try check(archive_write_header(handle, entry), "start")
    }

    deinit { archive_write_free(handle) }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = archive_write_data(handle, bytes.baseAddress! + done, bytes.count - done)
            if n <= 0 { try check(n == 0 ? ARCHIVE_FATAL : Int32(truncatingIfNeeded: n), "write") }
            done += n
        }
    }

    func close() throws { try check(archive_write_close(handle), "finish") }

    private func check(_ status: Int32, _ step: String) throws {
        guard status < ARCHIVE_OK else { return }
        let reason = archive_error_string(handle).map { String(cString: $0) } ?? "status \(status)"
        throw CheckpointError(.kernel, "gzip \(what): \(step): \(reason)")
    }
}

/// A gzip'ed file's bytes, uncompressed block by block (libarchive's raw format).
private final class GunzipStream {
    private let handle: OpaquePointer
    private let path: String

    init(path: String) throws {
        handle = archive_read_new()
        self.path = path
        archive_read_support_filter_gzip(handle)
        archive_read_support_format_raw(handle)
        try check(archive_read_open_filename(handle, path, 1 << 16), "open")
        var entry: OpaquePointer?
        try check(archive_read_next_header(handle, &entry), "start")
        // The raw format takes any bytes: what gzip did not write is refused here, by name.
        let filters = (0..<archive_filter_count(handle)).map { archive_filter_code(handle, $0) }
        guard filters.contains(ARCHIVE_FILTER_GZIP) else {
            throw CheckpointError(.invalidArgument, "tmpfs image \(path): not gzip'ed")
        }
    }

    deinit { archive_read_free(handle) }

    /// The next bytes into `buffer`; 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = archive_read_data(handle, buffer.baseAddress, buffer.count)
        if n < 0 { try check(Int32(truncatingIfNeeded: n), "read") }
        return n
    }

    private func check(_ status: Int32, _ step: String) throws {
        guard status < ARCHIVE_OK else { return }
        let reason = archive_error_string(handle).map { String(cString: $0) } ?? "status \(status)"
        throw CheckpointError(.kernel, "gunzip \(path): \(step): \(reason)")
    }
}
