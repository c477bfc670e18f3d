import Foundation
import LinuxKernel
import CShim
import Images

/// Names: binding, and names whose file was unlinked (or replaced) since bind.
extension UnixSocketRestore {
    /// Binds the socket at its name. The file of the dumped socket is still there after a
    /// dump that killed it: a socket file at the name is replaced.
    func bind(_ e: UnixSkEntry) throws {
        try inNameDirectory(of: e) {
            var st = stat()
            if e.name.first != 0 && lstat(describe(e), &st) == 0 && st.st_mode & S_IFMT == S_IFSOCK { unlink(describe(e)) }
            try bindHere(e)
        }
    }

    /// A name whose file was gone at the dump (unlinked, replaced by another file, its
    /// directory removed) is the socket's all the same (getsockname), and the name its
    /// clients connected through. It is bound for the time of `body` (connects, refills),
    /// as CRIU does: missing directories are made, whatever stands at the path now is
    /// moved aside, and afterwards the socket file goes and everything is put back.
    func bindForTheMoment(_ e: UnixSkEntry, _ body: () throws -> Void) throws {
        try inNameDirectory(of: e) {
            let path = describe(e)
            let made = try makeMissingDirectories(for: path, e)
            defer { for dir in made.reversed() { rmdir(dir) } }
            let parked = path + ".ocicheckpoint-sk-ghost"
            var st = stat()
            let park = lstat(path, &st) == 0
            if park && rename(path, parked) != 0 {
                throw CheckpointError.errno("move \(path) aside to bind UNIX socket \(e.ino) there for the restore")
            }
            defer { if park { rename(parked, path) } }
            try bindHere(e)
            defer { unlink(path) }
            try body()
        }
    }

    private func makeMissingDirectories(for path: String, _ e: UnixSkEntry) throws -> [String] {
        var missing: [String] = []
        var dir = (path as NSString).deletingLastPathComponent
        var st = stat()
        while !dir.isEmpty && dir != "/" && lstat(dir, &st) != 0 {
            missing.append(dir)
            dir = (dir as NSString).deletingLastPathComponent
        }
        var made: [String] = []
        for d in missing.reversed() {
            if mkdir(d, 0o700) != 0 {
                let err = errno
                made.reversed().forEach { rmdir($0) }
                throw CheckpointError.errno("make directory \(d) to bind UNIX socket \(e.ino) for the restore", err)
            }
            made.append(d)
        }
        return made
    }

    private func bindHere(_ e: UnixSkEntry) throws {
        try withAddress(e) { addr, len in
            if Glibc.bind(sockets[e.ino]!, addr, len) != 0 { throw CheckpointError.errno("bind UNIX socket \(e.ino) to \(describe(e))") }
        }
        if e.name.first != 0 && e.hasFilePerms {
            chmod(describe(e), mode_t(e.filePerms.mode & 0o7777))
            chown(describe(e), e.filePerms.uid, e.filePerms.gid)
        }
    }

    /// Runs `body` in the directory a relative path name was bound in, then goes back.
    func inNameDirectory(of e: UnixSkEntry, _ body: () throws -> Void) throws {
        let relative = e.name.first.map { $0 != 0 && $0 != UInt8(ascii: "/") } ?? false
        guard relative && !e.nameDir.isEmpty else { return try body() }
        let previous = open(".", OpenFlag.path | O_DIRECTORY | O_CLOEXEC)
        if previous < 0 { throw CheckpointError.errno("open the current directory to bind UNIX socket \(e.ino)") }
        defer { _ = fchdir(previous); close(previous) }
        if chdir(e.nameDir) != 0 {
            throw CheckpointError.errno("chdir to \(e.nameDir), the directory of UNIX socket \(e.ino)'s name")
        }
        try body()
    }

    func describe(_ e: UnixSkEntry) -> String {
        let b = [UInt8](e.name)
        return b.first == 0 ? "@" + String(decoding: b.dropFirst(), as: UTF8.self) : String(decoding: b.prefix { $0 != 0 }, as: UTF8.self)
    }

    func withAddress(_ e: UnixSkEntry, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Void) throws {
        let name = [UInt8](e.name)
        var sa = sockaddr_un()
        guard name.count <= MemoryLayout.size(ofValue: sa.sun_path) else {
            throw CheckpointError(.image, "UNIX socket \(e.ino): name of \(name.count) bytes does not fit sun_path")
        }
        sa.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sa.sun_path) { $0.copyBytes(from: name) }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + name.count)
        try withUnsafePointer(to: &sa) { try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, len) } }
    }
}
