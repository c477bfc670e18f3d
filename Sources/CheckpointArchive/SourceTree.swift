import CArchive
import LinuxKernel
import Foundation

/// One filesystem object under the directory being packed, in archive order.
struct SourceEntry {
    let name: String
    let path: String
    let status: stat
}

/// The objects under a directory, depth first, each directory's names sorted, so the same
/// tree always gives the same member order. Symlinks are members, never followed.
enum SourceTree {
    static func entries(under root: String) throws -> [SourceEntry] {
        var result: [SourceEntry] = []
        try walk(root, prefix: "", into: &result)
        return result
    }

    private static func walk(_ directory: String, prefix: String, into result: inout [SourceEntry]) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        } catch {
            throw CheckpointError(.notFound, "pack: cannot list \(directory): \(error.localizedDescription)")
        }
        for name in names {
            let path = directory + "/" + name
            var status = stat()
            guard lstat(path, &status) == 0 else { throw CheckpointError.errno("pack: lstat \(path)") }
            let member = prefix + name
            guard member != ArchiveManifest.memberName else {
                throw CheckpointError(.invalidArgument, "pack: \(path): the name \(member) is reserved for the archive's manifest")
            }
            switch status.st_mode & S_IFMT {
            case S_IFREG, S_IFLNK:
                result.append(SourceEntry(name: member, path: path, status: status))
            case S_IFDIR:
                result.append(SourceEntry(name: member, path: path, status: status))
                try walk(path, prefix: member + "/", into: &result)
            default:
                throw CheckpointError(.unsupported, "pack: \(path) is a device, FIFO or socket; a checkpoint archive holds only files, directories and links")
            }
        }
    }

    /// The data regions of a file with holes ((offset, length) pairs), or nil when it has none.
    static func dataRegions(fd: Int32, size: Int64, blocks: Int64) -> [(Int64, Int64)]? {
        guard size > 0, blocks * 512 < size else { return nil }
        var regions: [(Int64, Int64)] = []
        var offset: Int64 = 0
        while offset < size {
            let data = lseek(fd, off_t(offset), Int32(CARCHIVE_SEEK_DATA))
            if data < 0 { break }  // ENXIO: only a hole remains
            let hole = min(Int64(lseek(fd, data, Int32(CARCHIVE_SEEK_HOLE))), size)
            if hole <= Int64(data) { break }
            regions.append((Int64(data), hole - Int64(data)))
            offset = hole
        }
        let dataBytes = regions.reduce(Int64(0)) { $0 + $1.1 }
        return dataBytes == size ? nil : regions
    }

    /// Every extended attribute of a path (not followed), as libarchive stores them.
    static func extendedAttributes(of path: String) throws -> [(String, Data)] {
        let listSize = llistxattr(path, nil, 0)
        if listSize < 0 {
            if errno == ENOTSUP { return [] }
            throw CheckpointError.errno("pack: listxattr \(path)")
        }
        guard listSize > 0 else { return [] }
        var list = [CChar](repeating: 0, count: listSize)
        let got = llistxattr(path, &list, listSize)
        guard got >= 0 else { throw CheckpointError.errno("pack: listxattr \(path)") }
        let names = list[0..<got].split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return try names.map { name in
            let size = lgetxattr(path, name, nil, 0)
            guard size >= 0 else { throw CheckpointError.errno("pack: getxattr \(name) of \(path)") }
            var value = Data(count: size)
            let read = value.withUnsafeMutableBytes { lgetxattr(path, name, $0.baseAddress, size) }
            guard read >= 0 else { throw CheckpointError.errno("pack: getxattr \(name) of \(path)") }
            return (name, value.prefix(read))
        }
    }
}
