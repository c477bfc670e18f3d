import CArchive
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

func require(_ output: Output, _ what: String) throws {
    guard output.status == 0 else { throw TestFailure("\(what) failed (\(output.status)): \(output.err)\(output.out)") }
}

func write(_ text: String, to path: String, mode: mode_t = 0o644) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    chmod(path, mode)
}

func lstatOf(_ path: String) throws -> stat {
    var status = stat()
    guard lstat(path, &status) == 0 else { throw TestFailure("lstat \(path): errno \(errno)") }
    return status
}

func xattr(_ path: String, _ name: String) -> String? {
    var buffer = [UInt8](repeating: 0, count: 256)
    let n = lgetxattr(path, name, &buffer, buffer.count)
    return n < 0 ? nil : String(decoding: buffer[0..<n], as: UTF8.self)
}

/// The first bytes of a file, to tell which compression an archive really has.
func leadingBytes(_ path: String, _ count: Int) throws -> [UInt8] {
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    return [UInt8](try handle.read(upToCount: count) ?? Data())
}
