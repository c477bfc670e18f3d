import Foundation
import LinuxKernel
import CShim
import Images

/// A deleted file as its ghost image holds it: the entry and its data runs (a file saved
/// without chunks, as CRIU writes small ones, is one run from offset 0).
struct GhostFile {
    let remapID: UInt32
    let entry: GhostFileEntry
    let runs: [(offset: UInt64, bytes: Data)]

    static func read(_ remapID: UInt32, _ dir: ImageDirectory) throws -> GhostFile {
        var reader = try dir.reader(.ghostFile(remapID))
        do {
            let g = try reader.one(GhostFileEntry.self)
            guard g.hasChunks && g.chunks else {
                guard !g.hasSize || g.size <= UInt64(reader.remaining) else {
                    throw ImageError(reader.path, "ghost file of \(g.size) bytes holds only \(reader.remaining)")
                }
                let content = try reader.raw(g.hasSize ? Int(g.size) : reader.remaining)
                guard reader.atEnd else { throw ImageError(reader.path, "\(reader.remaining) bytes after the file's \(content.count)") }
                return GhostFile(remapID: remapID, entry: g, runs: [(0, content)])
            }
            guard g.hasSize else { throw ImageError(reader.path, "ghost file in chunks without a size") }
            var runs: [(UInt64, Data)] = []
            while let c = try reader.next(GhostChunkEntry.self) {
                guard c.off <= g.size && c.len <= g.size - c.off && c.len <= UInt64(reader.remaining) else {
                    throw ImageError(reader.path, "ghost chunk \(c.off)+\(c.len) past the file's size \(g.size)")
                }
                runs.append((c.off, try reader.raw(Int(c.len))))
            }
            return GhostFile(remapID: remapID, entry: g, runs: runs)
        } catch let e as ImageError { throw e.checkpointError }
    }

    /// The ghost files by the id of each file entry they stand for (one image may serve several).
    static func readAll(_ remaps: [RemapFilePathEntry], _ dir: ImageDirectory) throws -> [UInt32: GhostFile] {
        var byRemap: [UInt32: GhostFile] = [:]
        var out: [UInt32: GhostFile] = [:]
        for r in remaps where r.remapType == .ghost {
            if byRemap[r.remapID] == nil { byRemap[r.remapID] = try read(r.remapID, dir) }
            out[r.origID] = byRemap[r.remapID]
        }
        return out
    }
}

extension RestoreResources {
    /// The path that opens the deleted file `name` again (/proc/self/fd of an O_PATH fd
    /// of ours): made once per ghost, so every description of it opens one inode. It is
    /// made under its old name and unlinked there, so the fds show "NAME (deleted)" as
    /// before; a file that stands at that name now is swapped out for the moment
    /// (RENAME_EXCHANGE) and put back.
    func ghostPath(_ g: GhostFile, name: String) throws -> String {
        if let fd = ghostAnchors[g.remapID] { return "/proc/self/fd/\(fd)" }
        let temp = name + ".ocicheckpoint-ghost-\(getpid())-\(g.remapID)"
        let e = g.entry
        let isDir = mode_t(e.mode) & S_IFMT == S_IFDIR
        try make(g, at: temp, name: name)
        var at = temp, exchanged = false
        defer {
            _ = isDir ? rmdir(rootPath + at) : unlink(rootPath + at)
            if exchanged { Glibc.rename(rootPath + temp, rootPath + name) }
        }
        let full = rootPath + temp
        // chown first: it clears set-uid bits that chmod sets.
        try Syscall.retrying("chown deleted \(name)") { lchown(full, e.uid, e.gid) }
        try Syscall.retrying("chmod deleted \(name)") { chmod(full, mode_t(e.mode & 0o7777)) }
        if e.hasMtim {
            var times = [Glibc.timespec(tv_sec: Int(e.atim.tvSec), tv_nsec: Int(e.atim.tvUsec) * 1000),
                         Glibc.timespec(tv_sec: Int(e.mtim.tvSec), tv_nsec: Int(e.mtim.tvUsec) * 1000)]
            try Syscall.retrying("set times of deleted \(name)") { utimensat(AT_FDCWD, full, &times, AT_SYMLINK_NOFOLLOW) }
        }
        if Self.renameat2(full, rootPath + name, flags: Self.noReplace) {
            at = name
        } else if errno == EEXIST && Self.renameat2(full, rootPath + name, flags: Self.exchange) {
            at = name; exchanged = true
        }
        let anchor = try Syscall.retrying("open deleted \(name) again") { open(rootPath + at, OpenFlag.path | O_NOFOLLOW | O_CLOEXEC) }
        ghostAnchors[g.remapID] = anchor
        return "/proc/self/fd/\(anchor)"
    }

    /// The deleted file itself at `path`: a regular file with its data runs and holes, an
    /// empty directory, or a FIFO or device node.
    private func make(_ g: GhostFile, at path: String, name: String) throws {
        let e = g.entry
        switch mode_t(e.mode) & S_IFMT {
        case S_IFDIR:
            try Syscall.retrying("recreate deleted directory \(name) as \(path)") { mkdir(rootPath + path, 0o700) }
        case S_IFIFO, S_IFCHR, S_IFBLK:
            try Syscall.retrying("recreate deleted \(name) as \(path)") { mknod(rootPath + path, mode_t(e.mode) & S_IFMT | 0o600, dev_t(e.rdev)) }
        default:
            let fd = openPath(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
            if fd < 0 { throw CheckpointError.errno("recreate deleted file \(name) as \(path)") }
            defer { close(fd) }
            do {
                try Syscall.retrying("size deleted file \(name) to \(e.size)") { ftruncate(fd, off_t(e.size)) }
                for run in g.runs {
                    let n = run.bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, run.bytes.count, off_t(run.offset)) }
                    if n != run.bytes.count { throw CheckpointError.errno("write deleted file \(name) at \(run.offset)") }
                }
            } catch {
                unlink(rootPath + path)
                throw error
            }
        }
    }

    private static let noReplace = 1, exchange = 2   // RENAME_NOREPLACE, RENAME_EXCHANGE

    /// renameat2(2), which has no libc wrapper here.
    private static func renameat2(_ from: String, _ to: String, flags: Int) -> Bool {
        let r = from.withCString { f in
            to.withCString { t in
                Syscall.result(316 /* renameat2 */, Int(AT_FDCWD), Int(bitPattern: f), Int(AT_FDCWD), Int(bitPattern: t), flags)
            }
        }
        if case .failure(let err) = r { errno = err.rawValue; return false }
        return true
    }

    /// The path of the link the dump made for deleted file `id` (--link-remap), if any.
    func linkRemapPath(for id: UInt32) -> String? {
        guard let remapID = images.linkRemaps[id], let f = images.files[remapID], f.type == .reg else { return nil }
        linkRemapPaths.insert(f.reg.name)
        return f.reg.name
    }

    /// Once every task holds its files: owners set, and the links made for deleted files
    /// removed, so they are deleted again.
    func finishFiles(hostTids: [Int32: Int32]) throws {
        try restoreOwners(hostTids: hostTids)
        removeDeletedNames()
    }

    func removeDeletedNames() {
        for p in linkRemapPaths { unlink(rootPath + p) }
        linkRemapPaths = []
        for fd in ghostAnchors.values { close(fd) }
        ghostAnchors = [:]
    }
}
