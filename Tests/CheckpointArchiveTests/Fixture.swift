import CArchive
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A checkpoint-like tree with every kind of object the archive must carry: nested
/// directories with their own modes and owners, a symlink, a hardlink, an xattr, and
/// (optionally) a 100 MiB file that is almost all hole.
enum Fixture {
    static let sparseSize: Int64 = 100 << 20

    static func make(at root: String, sparse: Bool) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/checkpoint/nested/deeper", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        try write("deep content marker\n", to: root + "/checkpoint/nested/deeper/deep.txt", mode: 0o640)
        try write("#!/bin/sh\necho restored\n", to: root + "/checkpoint/run.sh", mode: 0o755)
        try write("{\"id\": \"archive-test\"}\n", to: root + "/config.dump", mode: 0o600)
        chown(root + "/checkpoint/nested/deeper/deep.txt", 1234, 5678)
        chown(root + "/checkpoint/nested", 42, 43)
        chmod(root + "/checkpoint/nested", 0o750)
        chmod(root + "/empty", 0o700)
        symlink("nested/deeper/deep.txt", root + "/checkpoint/deep-link")
        link(root + "/checkpoint/run.sh", root + "/checkpoint/run-hardlink.sh")
        let value = Array("checkpoint-value".utf8)
        guard lsetxattr(root + "/config.dump", "user.ocicheckpoint.test", value, value.count, 0) == 0 else {
            throw TestFailure("setxattr: errno \(errno)")
        }
        if sparse {
            try makeSparse(root + "/checkpoint/pages-1.img")
            // A hole at the end, and a file that is nothing but hole.
            try write("head\n", to: root + "/checkpoint/tail-hole.img")
            truncate(root + "/checkpoint/tail-hole.img", 8 << 20)
            try write("", to: root + "/checkpoint/all-hole.img")
            truncate(root + "/checkpoint/all-hole.img", 4 << 20)
        }
    }

    /// Data at 0, 50 MiB and the last 4 KiB, holes between.
    static func makeSparse(_ path: String) throws {
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        guard fd >= 0 else { throw TestFailure("create \(path)") }
        defer { close(fd) }
        let block = [UInt8](repeating: 0xA5, count: 4096)
        for offset in [Int64(0), 50 << 20, sparseSize - 4096] {
            guard pwrite(fd, block, block.count, off_t(offset)) == block.count else { throw TestFailure("pwrite") }
        }
    }

    /// Every object under `a` is in `b` with the same type, mode, owner, content, link target
    /// and xattrs; hardlinks stay hardlinks and sparse files stay sparse.
    static func expectSame(_ a: String, _ b: String) throws {
        let names = try FileManager.default.subpathsOfDirectory(atPath: a).sorted()
        #expect(try FileManager.default.subpathsOfDirectory(atPath: b).sorted() == names)
        for name in names {
            let x = try lstatOf(a + "/" + name), y = try lstatOf(b + "/" + name)
            #expect(x.st_mode == y.st_mode, "mode of \(name)")
            #expect(x.st_uid == y.st_uid && x.st_gid == y.st_gid, "owner of \(name)")
            #expect(x.st_size == y.st_size, "size of \(name)")
            switch x.st_mode & S_IFMT {
            case S_IFREG:
                #expect(FileManager.default.contentsEqual(atPath: a + "/" + name, andPath: b + "/" + name), "content of \(name)")
                #expect(y.st_blocks <= x.st_blocks + 64, "\(name) stays sparse: \(y.st_blocks) blocks vs \(x.st_blocks)")
            case S_IFLNK:
                #expect(try FileManager.default.destinationOfSymbolicLink(atPath: b + "/" + name)
                        == FileManager.default.destinationOfSymbolicLink(atPath: a + "/" + name))
            default: break
            }
        }
        #expect(xattr(b + "/config.dump", "user.ocicheckpoint.test") == "checkpoint-value")
        let run = try lstatOf(b + "/checkpoint/run.sh"), hard = try lstatOf(b + "/checkpoint/run-hardlink.sh")
        #expect(run.st_ino == hard.st_ino, "hardlink kept")
    }
}
