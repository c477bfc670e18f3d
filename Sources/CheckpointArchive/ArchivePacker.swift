import CArchive
import LinuxKernel
import Foundation

/// Writes every object under a directory into an ArchiveWriter, streaming each file's data
/// and summing it on the way, then the manifest as the last member.
struct ArchivePacker {
    let sources: [SourceEntry]
    let writer: ArchiveWriter
    let progress: ProgressReporter?
    /// A plain tar (rootfs-diff.tar) goes without the manifest.
    var withManifest = true
    /// Signs the manifest: its signature member follows it.
    var signingKey: SigningKey?
    private static let blockSize = 1 << 20

    init(directory: String, writer: ArchiveWriter, progress: ProgressReporter?, signingKey: SigningKey? = nil) throws {
        self.init(sources: try SourceTree.entries(under: directory), writer: writer, progress: progress)
        self.signingKey = signingKey
    }

    init(sources: [SourceEntry], writer: ArchiveWriter, progress: ProgressReporter?, withManifest: Bool = true) {
        self.sources = sources
        self.writer = writer
        self.progress = progress
        self.withManifest = withManifest
    }

    func pack() throws {
        progress?.start(total: sources.reduce(Int64(0)) { $0 + (isRegular($1.status) ? Int64($1.status.st_size) : 0) })
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.blockSize, alignment: 4096)
        defer { buffer.deallocate() }
        var done: Int64 = 0
        var firstNameOfInode: [String: String] = [:]
        var manifest = ArchiveManifest(members: [])
        for source in sources {
            let inode = "\(source.status.st_dev):\(source.status.st_ino)"
            var linkTarget: String?
            if isRegular(source.status), source.status.st_nlink > 1 {
                linkTarget = firstNameOfInode[inode]
                if linkTarget == nil { firstNameOfInode[inode] = source.name }
            }
            manifest.members.append(try write(source, hardlinkTo: linkTarget, buffer: buffer, done: &done))
        }
        if withManifest { try writeManifest(manifest) }
        progress?.finish()
    }

    private func write(_ source: SourceEntry, hardlinkTo linkTarget: String?, buffer: UnsafeMutableRawPointer,
                       done: inout Int64) throws -> ArchiveManifest.Entry {
        let entry = archive_entry_new()!
        defer { archive_entry_free(entry) }
        var status = source.status
        archive_entry_copy_stat(entry, &status)
        archive_entry_copy_pathname(entry, source.name)
        for (name, value) in try SourceTree.extendedAttributes(of: source.path) {
            value.withUnsafeBytes { archive_entry_xattr_add_entry(entry, name, $0.baseAddress, $0.count) }
        }
        var record = ArchiveManifest.Entry(name: source.name, kind: .directory, mode: UInt32(status.st_mode & 0o7777),
                                           uid: status.st_uid, gid: status.st_gid)
        switch status.st_mode & S_IFMT {
        case S_IFDIR:
            try writer.writeHeader(entry, name: source.name)
        case S_IFLNK:
            let target = try FileManager.default.destinationOfSymbolicLink(atPath: source.path)
            archive_entry_set_symlink(entry, target)
            record.kind = .symlink
            record.target = target
            try writer.writeHeader(entry, name: source.name)
        default:
            if let linkTarget {
                archive_entry_set_hardlink(entry, linkTarget)
                archive_entry_set_size(entry, 0)
                record.kind = .hardlink
                record.target = linkTarget
                try writer.writeHeader(entry, name: source.name)
            } else {
                record.kind = .file
                record.size = Int64(status.st_size)
                record.sha256 = try writeFile(source, entry: entry, buffer: buffer, done: &done)
            }
        }
        return record
    }

    /// Streams the file's data regions; holes are passed as zeros, which the pax writer drops
    /// for a sparse entry, so they are neither read from disk nor stored.
    private func writeFile(_ source: SourceEntry, entry: OpaquePointer, buffer: UnsafeMutableRawPointer,
                           done: inout Int64) throws -> String {
        let fd = open(source.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.errno("pack: open \(source.path)") }
        defer { close(fd) }
        let size = Int64(source.status.st_size)
        let regions = SourceTree.dataRegions(fd: fd, size: size, blocks: Int64(source.status.st_blocks))
        if let regions {
            for (offset, length) in regions { archive_entry_sparse_add_entry(entry, offset, length) }
            if regions.isEmpty { archive_entry_sparse_add_entry(entry, size, 0) }
        }
        try writer.writeHeader(entry, name: source.name)
        let hasher = SHA256Hasher()
        var position: Int64 = 0
        for (offset, length) in regions ?? [(0, size)] {
            try writeZeros(offset - position, hasher: hasher, name: source.name, done: &done)
            var left = length
            var at = offset
            while left > 0 {
                let want = Int(min(left, Int64(Self.blockSize)))
                let got = try Syscall.retrying("pack: read \(source.path)") { pread(fd, buffer, want, off_t(at)) }
                guard got > 0 else {
                    throw CheckpointError(.invalidState, "pack: \(source.path) shrank while it was being packed")
                }
                hasher.update(buffer, count: got)
                try writer.write(buffer, count: got, name: source.name)
                at += Int64(got)
                left -= Int64(got)
                done += Int64(got)
                progress?.update(done: done)
            }
            position = offset + length
        }
        try writeZeros(size - position, hasher: hasher, name: source.name, done: &done)
        return hasher.finish()
    }

    private func writeZeros(_ count: Int64, hasher: SHA256Hasher, name: String, done: inout Int64) throws {
        guard count > 0 else { return }
        hasher.update(zeros: count)
        done += count
        var left = count
        while left > 0 {
            let step = Int(min(left, Int64(ZeroBlock.size)))
            try writer.write(ZeroBlock.bytes, count: step, name: name)
            left -= Int64(step)
        }
    }

    private func writeManifest(_ manifest: ArchiveManifest) throws {
        let data = try manifest.encoded()
        try writeSmallMember(ArchiveManifest.memberName, data)
        if let signingKey { try writeSmallMember(ManifestSignature.memberName, try ManifestSignature.sign(data, with: signingKey)) }
    }

    private func writeSmallMember(_ name: String, _ data: Data) throws {
        let entry = archive_entry_new()!
        defer { archive_entry_free(entry) }
        archive_entry_copy_pathname(entry, name)
        archive_entry_set_filetype(entry, UInt32(Glibc.S_IFREG))
        archive_entry_set_perm(entry, 0o600)
        archive_entry_set_size(entry, Int64(data.count))
        archive_entry_set_mtime(entry, time(nil), 0)
        try writer.writeHeader(entry, name: name)
        try data.withUnsafeBytes { try writer.write($0.baseAddress!, count: $0.count, name: name) }
    }

    private func isRegular(_ status: stat) -> Bool { status.st_mode & S_IFMT == S_IFREG }
}
