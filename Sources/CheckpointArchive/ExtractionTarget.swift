import CArchive
import LinuxKernel
import Foundation

/// Where an extraction writes: a temporary sibling of the requested directory, renamed onto it
/// only when everything was verified, and removed on any failure, so a refused archive
/// leaves nothing behind.
struct ExtractionTarget {
    let directory: String
    let temporary: String

    /// `directory` must not exist, or be an empty directory; its parent must exist.
    static func prepare(_ requested: String) throws -> ExtractionTarget {
        var path = requested.hasPrefix("/") ? requested : FileManager.default.currentDirectoryPath + "/" + requested
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        var status = stat()
        if lstat(path, &status) == 0 {
            let empty = (try? FileManager.default.contentsOfDirectory(atPath: path).isEmpty) ?? false
            guard status.st_mode & S_IFMT == S_IFDIR, empty else {
                throw CheckpointError(.invalidArgument, "unpack: \(requested) exists and is not an empty directory")
            }
        }
        let url = URL(fileURLWithPath: path)
        let parent = url.deletingLastPathComponent().path
        // The parent without symlinks: libarchive's symlink guard checks every component.
        guard let real = realpath(parent, nil) else {
            throw CheckpointError(.notFound, "unpack: the parent directory of \(requested) does not exist")
        }
        let realParent = String(cString: real)
        free(real)
        let base = url.lastPathComponent
        var template = Array("\(realParent == "/" ? "" : realParent)/.\(base).unpack-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw CheckpointError.errno("unpack: create a directory beside \(requested)") }
        let temporary = String(cString: template)
        return ExtractionTarget(directory: (realParent == "/" ? "" : realParent) + "/" + base, temporary: temporary)
    }

    func commit() throws {
        guard rename(temporary, directory) == 0 else {
            throw CheckpointError.errno("unpack: rename \(temporary) to \(directory)")
        }
    }

    /// Removes the temporary tree without following any symlink in it.
    func discard() {
        _ = carchive_remove_tree(temporary)
    }
}
