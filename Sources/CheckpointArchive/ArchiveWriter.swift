import CArchive
import LinuxKernel
import Foundation

/// A libarchive writer whose output goes to a Swift sink block by block: a pax tar stream,
/// or (raw) one compressed byte stream, as an OCI layer blob needs.
final class ArchiveWriter {
    enum Format { case tar, raw }

    let handle: OpaquePointer
    private let what: String
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var sinkError: Error?

    init(_ format: Format, compression: ArchiveCompression, what: String,
         sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        handle = archive_write_new()
        self.what = what
        self.sink = sink
        switch format {
        case .tar:
            archive_write_set_format_pax_restricted(handle)
            // SCHILY.xattr only: GNU tar and Go's archive/tar (podman) read it; they warn on LIBARCHIVE.xattr.
            archive_write_set_format_option(handle, "pax", "xattrheader", "SCHILY")
        case .raw: archive_write_set_format_raw(handle)
        }
        switch compression {
        case .zstd:
            archive_write_add_filter_zstd(handle)
            // zstd's own workers compress while this thread reads and hashes the next block.
            archive_write_set_filter_option(handle, "zstd", "threads", "\(max(2, min(4, sysconf(Int32(_SC_NPROCESSORS_ONLN)))))")
        case .gzip: archive_write_add_filter_gzip(handle)
        case .none: archive_write_add_filter_none(handle)
        }
        // Large writes to the sink; the stream ends right after tar's end-of-archive blocks.
        archive_write_set_bytes_per_block(handle, 1 << 20)
        archive_write_set_bytes_in_last_block(handle, 1)
        let client = Unmanaged.passUnretained(self).toOpaque()
        let opened = archive_write_open(handle, client, nil, { _, client, buffer, length in
            let writer = Unmanaged<ArchiveWriter>.fromOpaque(client!).takeUnretainedValue()
            do {
                try writer.sink(UnsafeRawBufferPointer(start: buffer, count: length))
                return length
            } catch {
                writer.sinkError = error
                return -1
            }
        }, nil)
        try check(opened, "open")
    }

    deinit { archive_write_free(handle) }

    func writeHeader(_ entry: OpaquePointer, name: String) throws {
        try check(archive_write_header(handle, entry), "header of \(name)")
    }

    func write(_ bytes: UnsafeRawPointer, count: Int, name: String) throws {
        var done = 0
        while done < count {
            let n = archive_write_data(handle, bytes + done, count - done)
            if n <= 0 { try check(n == 0 ? ARCHIVE_FATAL : Int32(truncatingIfNeeded: n), "data of \(name)") }
            done += n
        }
    }

    /// Flushes the compressor and the last tar block through the sink.
    func close() throws {
        try check(archive_write_close(handle), "close")
    }

    private func check(_ status: Int32, _ step: String) throws {
        guard status < ARCHIVE_OK else { return }
        if let sinkError { throw sinkError }
        throw ArchiveError.libarchive(handle, "\(what): writing \(step)")
    }
}
