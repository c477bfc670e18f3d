import Foundation
import LinuxKernel
import Images

/// Where a DUMP or RESTORE request's files live. images_dir_fd and work_dir_fd are the
/// client's descriptor numbers (runc's), reached through /proc/<peer>/fd; CRIU also
/// accepts descriptors the client passed down into our own table, so /proc/self/fd is
/// the fallback.
struct RequestDirectories {
    let images: String
    let work: String

    static func resolve(_ opts: CriuOpts, peer: Int32?) throws -> RequestDirectories {
        let images: String
        if opts.hasImagesDirFd && opts.imagesDirFd >= 0 {
            images = try directory(fd: opts.imagesDirFd, field: "images_dir_fd", peer: peer)
        } else if opts.hasImagesDir && !opts.imagesDir.isEmpty {
            images = try directory(path: opts.imagesDir, field: "images_dir")
        } else {
            throw CheckpointError(.invalidArgument, "the request names no image directory (images_dir_fd)")
        }
        var work = images
        if opts.hasWorkDirFd && opts.workDirFd >= 0 {
            work = try directory(fd: opts.workDirFd, field: "work_dir_fd", peer: peer)
        }
        return RequestDirectories(images: images, work: work)
    }

    /// The log the request asks for: log_file (relative to the work directory; CRIU's
    /// default name when absent) at log_level 0..4 (default 2).
    func openLog(_ opts: CriuOpts) throws -> Log {
        let name = opts.hasLogFile && !opts.logFile.isEmpty ? opts.logFile : "criu.log"
        let level = opts.hasLogLevel ? min(max(Int(opts.logLevel), 0), 4) : 2
        let path = name.hasPrefix("/") ? name : (work as NSString).appendingPathComponent(name)
        return try Log(path: path, level: level)
    }

    private static func directory(fd: Int32, field: String, peer: Int32?) throws -> String {
        var candidates: [String] = []
        if let peer { candidates.append("/proc/\(peer)/fd/\(fd)") }
        candidates.append("/proc/self/fd/\(fd)")
        var seen: [String] = []
        for link in candidates {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link) else { continue }
            if isDirectory(target) { return target }
            seen.append("\(link) -> \(target)")
        }
        let whose = peer.map { "the rpc client (pid \($0)) or this process" } ?? "this process"
        let detail = seen.isEmpty ? "not open" : seen.joined(separator: ", ")
        throw CheckpointError(.invalidArgument, "\(field) \(fd): not a directory open in \(whose) (\(detail))")
    }

    private static func directory(path: String, field: String) throws -> String {
        guard path.hasPrefix("/"), isDirectory(path) else {
            throw CheckpointError(.invalidArgument, "\(field) \(path): not an absolute path to a directory")
        }
        return path
    }

    private static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }
}
