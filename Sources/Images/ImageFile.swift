import Foundation
import LinuxKernel
import SwiftProtobuf

/// An error reading or writing one image file; names the file and the reason.
public struct ImageError: CheckpointErrorConvertible, CustomStringConvertible {
    public let path: String
    public let reason: String
    public init(_ path: String, _ reason: String) { self.path = path; self.reason = reason }
    public var description: String { "image \(path): \(reason)" }
    public var checkpointError: CheckpointError { CheckpointError(.image, description, cause: self) }
}

/// Writes one CRIU image: the magic header, then `[u32 size][protobuf]` records,
/// optionally followed by raw payload bytes (pipe data, ghost file contents).
/// Not synced on close: a dump syncs its directory's filesystem once before it writes
/// inventory.img (an fsync per image cost a journal commit each on disk, seven per task).
public final class ImageWriter {
    public let path: String
    private let fd: Int32
    private var buffer = Data()
    private var closed = false

    public init(path: String, magic: ImageMagic) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ImageError(path, "cannot create (\(String(cString: strerror(errno))))") }
        for word in magic.header { appendU32(word) }
    }

    deinit { if !closed { Glibc.close(fd) } }

    public func append<M: SwiftProtobuf.Message>(_ message: M) throws {
        guard !closed else { throw ImageError(path, "append after close") }
        let bytes: Data
        do { bytes = try message.serializedBytes() } catch {
            // Most often a proto2 `required` field left unset: CRIU would reject the record too.
            throw ImageError(path, "cannot encode \(M.protoMessageName): \(error)")
        }
        appendU32(UInt32(bytes.count))
        buffer.append(bytes)
        if buffer.count > 1 << 20 { try flush() }
    }

    public func appendRaw(_ bytes: Data) throws {
        guard !closed else { throw ImageError(path, "append after close") }
        buffer.append(bytes)
        if buffer.count > 1 << 20 { try flush() }
    }

    private func appendU32(_ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        let failure: Int32? = buffer.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                let n = write(fd, b.baseAddress! + done, b.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return n < 0 ? errno : EIO }
                done += n
            }
            return nil
        }
        if let failure { throw ImageError(path, "write failed: \(String(cString: strerror(failure)))") }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes and closes (with `sync`, fsyncs first). An image is complete only after
    /// this returns.
    public func close(sync: Bool = false) throws {
        guard !closed else { return }
        closed = true
        defer { Glibc.close(fd) }
        try flush()
        if sync && fsync(fd) != 0 { throw ImageError(path, "fsync failed: \(String(cString: strerror(errno)))") }
    }
}

/// Reads one CRIU image written by `ImageWriter` (or by CRIU).
public struct ImageReader {
    public let path: String
    private let data: Data
    public private(set) var offset: Int

    public init(path: String, magic: ImageMagic) throws {
        self.path = path
        guard let d = Self.contents(path) else {
            throw ImageError(path, "cannot read (\(String(cString: strerror(errno))))")
        }
        data = d
        offset = 0
        for expected in magic.header {
            guard let word = readU32() else { throw ImageError(path, "truncated header") }
            guard word == expected else {
                throw ImageError(path, String(format: "bad magic 0x%08x, expected 0x%08x", word, expected))
            }
        }
    }

    /// The whole file by open, fstat and read: a restore of 200 tasks reads ~1000 small
    /// images, and Foundation's reading costs several times these three calls.
    private static func contents(_ path: String) -> Data? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        var data = Data(count: Int(st.st_size))
        let got = data.withUnsafeMutableBytes { p -> Int in
            var done = 0
            while done < p.count {
                let n = read(fd, p.baseAddress! + done, p.count - done)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { return -1 }
                if n == 0 { break }
                done += n
            }
            return done
        }
        if got < 0 { return nil }
        // A file that shrank as we read it is read as far as it goes.
        if got < data.count { data.count = got }
        return data
    }

    private mutating func readU32() -> UInt32? {
        guard offset + 4 <= data.count else { return nil }
        var v: UInt32 = 0
        _ = withUnsafeMutableBytes(of: &v) { data.copyBytes(to: $0, from: (data.startIndex + offset)..<(data.startIndex + offset + 4)) }
        offset += 4
        return UInt32(littleEndian: v)
    }

    public var atEnd: Bool { offset >= data.count }
    /// Bytes left after the current record.
    public var remaining: Int { data.count - offset }

    /// The next record, or nil at the end of the file.
    public mutating func next<M: SwiftProtobuf.Message>(_ type: M.Type) throws -> M? {
        if atEnd { return nil }
        guard let size = readU32() else { throw ImageError(path, "truncated record size at offset \(offset)") }
        let start = data.startIndex + offset
        guard offset + Int(size) <= data.count else {
            throw ImageError(path, "truncated record at offset \(offset - 4): \(size) bytes announced, \(data.count - offset) left")
        }
        offset += Int(size)
        do { return try M(serializedBytes: data[start..<(start + Int(size))]) } catch {
            throw ImageError(path, "corrupt \(M.protoMessageName) record at offset \(offset - Int(size) - 4)")
        }
    }

    public mutating func all<M: SwiftProtobuf.Message>(_ type: M.Type) throws -> [M] {
        var out: [M] = []
        while let m = try next(type) { out.append(m) }
        return out
    }

    /// Exactly one record; an empty image is an error.
    public mutating func one<M: SwiftProtobuf.Message>(_ type: M.Type) throws -> M {
        guard let m = try next(type) else { throw ImageError(path, "empty, expected one \(M.protoMessageName)") }
        return m
    }

    public mutating func raw(_ count: Int) throws -> Data {
        guard offset + count <= data.count else {
            throw ImageError(path, "truncated payload at offset \(offset): \(count) bytes announced")
        }
        let start = data.startIndex + offset
        offset += count
        return data.subdata(in: start..<(start + count))
    }
}
