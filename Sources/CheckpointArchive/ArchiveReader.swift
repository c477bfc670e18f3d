import CArchive
import LinuxKernel
import Foundation

/// A libarchive reader of a tar stream (zstd, gzip or plain, detected) from a file, or of a
/// raw compressed stream, or of bytes pulled from a Swift source (an OCI layer being hashed).
final class ArchiveReader {
    enum Format { case tar, raw }

    let handle: OpaquePointer
    /// What errors call the archive: "archive PATH", or "OCI layout DIR layer sha256:...".
    let name: String
    private(set) var totalBytes: Int64 = 0
    private var fd: Int32 = -1
    private var source: ((UnsafeMutableRawPointer, Int) throws -> Int)?
    private var sourceError: Error?
    private var buffer: UnsafeMutableRawPointer?
    private static let blockSize = 1 << 20

    private init(_ format: Format, name: String) {
        handle = archive_read_new()
        self.name = name
        archive_read_support_filter_zstd(handle)
        archive_read_support_filter_gzip(handle)
        switch format {
        case .tar: archive_read_support_format_tar(handle)
        case .raw: archive_read_support_format_raw(handle)
        }
    }

    convenience init(file path: String) throws {
        self.init(.tar, name: "archive \(path)")
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.errno("archive \(path)") }
        var status = stat()
        fstat(fd, &status)
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw CheckpointError(.invalidArgument, "archive \(path) is not a regular file")
        }
        totalBytes = Int64(status.st_size)
        try check(archive_read_open_fd(handle, fd, Self.blockSize), "reading its start")
    }

    convenience init(_ format: Format, name: String, source: @escaping (UnsafeMutableRawPointer, Int) throws -> Int) throws {
        self.init(format, name: name)
        self.source = source
        buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.blockSize, alignment: 16)
        let client = Unmanaged.passUnretained(self).toOpaque()
        let opened = archive_read_open(handle, client, nil, { _, client, out in
            let reader = Unmanaged<ArchiveReader>.fromOpaque(client!).takeUnretainedValue()
            do {
                let n = try reader.source!(reader.buffer!, ArchiveReader.blockSize)
                out?.pointee = UnsafeRawPointer(reader.buffer!)
                return n
            } catch {
                reader.sourceError = error
                return -1
            }
        }, nil)
        try check(opened, "reading its start")
    }

    deinit {
        archive_read_free(handle)
        if fd >= 0 { close(fd) }
        buffer?.deallocate()
    }

    /// Compressed bytes consumed so far, for progress.
    var bytesRead: Int64 { archive_filter_bytes(handle, -1) }

    /// The next member's header, or nil at the end of the archive.
    func next() throws -> OpaquePointer? {
        var entry: OpaquePointer?
        let status = archive_read_next_header(handle, &entry)
        if status == ARCHIVE_EOF { return nil }
        try check(status, "reading a member header")
        return entry
    }

    /// The next block of the current member's data and its offset (holes are skipped), or nil.
    func nextBlock() throws -> (UnsafeRawBufferPointer, Int64)? {
        var block: UnsafeRawPointer?
        var size = 0
        var offset: Int64 = 0
        let status = archive_read_data_block(handle, &block, &size, &offset)
        if status == ARCHIVE_EOF { return nil }
        try check(status, "reading member data")
        return (UnsafeRawBufferPointer(start: block, count: size), offset)
    }

    func skipData() throws {
        try check(archive_read_data_skip(handle), "skipping member data")
    }

    /// Reads up to `count` bytes of the current member's data; 0 at its end.
    func read(into bytes: UnsafeMutableRawPointer, count: Int) throws -> Int {
        let n = archive_read_data(handle, bytes, count)
        if n < 0 { try check(Int32(truncatingIfNeeded: n), "reading member data") }
        return n
    }

    private func check(_ status: Int32, _ step: String) throws {
        guard status < ARCHIVE_OK else { return }
        if let sourceError { throw sourceError }
        let reason = archive_error_string(handle).map { String(cString: $0) } ?? "error \(status)"
        throw ArchiveError.damaged(name, "\(step): \(reason)")
    }
}

/// A member's path from its header; "" when the header has none, where libarchive returns
/// NULL (a damaged header) and String(cString:) would trap.
func memberPathname(_ entry: OpaquePointer) -> String {
    archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
}
