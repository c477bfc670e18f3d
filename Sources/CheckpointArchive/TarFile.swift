import CArchive
import LinuxKernel
import Foundation

/// A plain tar of chosen paths under a root, as podman's rootfs-diff.tar, and its
/// extraction into an existing directory (a rootfs rebuilt from its base) without ever
/// writing outside it: no absolute names, no `..`, nothing through a symlink.
public enum TarFile {
    /// `paths` are relative to `root`; parents come before their children. Device nodes,
    /// FIFOs and sockets are left out: the runtime makes /dev, and the others hold no data.
    public static func write(root: String, paths: [String], to file: String) throws {
        var sources: [SourceEntry] = []
        for name in paths {
            let path = root + "/" + name
            var status = stat()
            guard lstat(path, &status) == 0 else { continue }  // gone meanwhile (--leave-running)
            switch status.st_mode & S_IFMT {
            case S_IFREG, S_IFDIR, S_IFLNK: sources.append(SourceEntry(name: name, path: path, status: status))
            default: continue
            }
        }
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CheckpointError.errno("create \(file)") }
        defer { close(fd) }
        let writer = try ArchiveWriter(.tar, compression: .none, what: "write \(file)") { bytes in
            try CheckpointArchive.writeAll(fd, bytes, file: file)
        }
        try ArchivePacker(sources: sources, writer: writer, progress: nil, withManifest: false).pack()
        try writer.close()
    }

    private static let flags = ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR
        | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_UNLINK

    /// Extracts every member of `file` into the existing directory `root`, replacing what is there.
    /// Device nodes and setuid/setgid files are refused unless `allowDevicesAndSetID`: the
    /// tar may come from an untrusted archive, and either would hand its maker the host.
    public static func extract(_ file: String, into root: String, allowDevicesAndSetID: Bool = false) throws {
        guard let real = realpath(root, nil) else { throw CheckpointError.errno("extract \(file): \(root)") }
        let base = String(cString: real)
        free(real)
        let reader = try ArchiveReader(file: file)
        let disk = archive_write_disk_new()!
        defer { archive_write_free(disk) }
        archive_write_disk_set_options(disk, flags)
        func check(_ status: Int, _ name: String) throws {
            guard status < Int(ARCHIVE_OK) else { return }
            let reason = archive_error_string(disk).map { String(cString: $0) } ?? "error \(status)"
            throw CheckpointError(.image, "\(file): member \(name): \(reason)")
        }
        while let entry = try reader.next() {
            let name: String?
            do { name = try MemberPath.normalize(memberPathname(entry)) } catch let MemberPath.Refusal.reason(reason) {
                throw ArchiveError.damaged(file, reason)
            }
            guard let name else { try reader.skipData(); continue }
            if !allowDevicesAndSetID {
                let type = archive_entry_filetype(entry)
                if type == S_IFCHR || type == S_IFBLK {
                    throw CheckpointError(.invalidArgument, "\(file): member \(name) is a \(type == S_IFBLK ? "block" : "character") device node: refused in an untrusted import (pass --trust-archive to accept it)")
                }
                let mode = archive_entry_mode(entry)
                if mode & 0o6000 != 0 && (type == S_IFREG || type == S_IFDIR && mode & 0o4000 != 0) {
                    throw CheckpointError(.invalidArgument, "\(file): member \(name) is set\(mode & 0o4000 != 0 ? "uid" : "gid") (mode \(String(mode & 0o7777, radix: 8))): refused in an untrusted import (pass --trust-archive to accept it)")
                }
            }
            archive_entry_copy_pathname(entry, base + "/" + name)
            if let link = archive_entry_hardlink(entry) {
                guard let target = try? MemberPath.normalize(String(cString: link)) else {
                    throw ArchiveError.damaged(file, "hardlink \(name) points outside")
                }
                archive_entry_copy_hardlink(entry, base + "/" + target)
            }
            try check(Int(archive_write_header(disk, entry)), name)
            while let (block, offset) = try reader.nextBlock() {
                if let bytes = block.baseAddress, block.count > 0 {
                    try check(archive_write_data_block(disk, bytes, block.count, offset), name)
                }
            }
            try check(Int(archive_write_finish_entry(disk)), name)
        }
        try check(Int(archive_write_close(disk)), "(end)")
    }
}
