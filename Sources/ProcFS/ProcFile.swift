#if canImport(Glibc)
import Glibc
#endif
import LinuxKernel

/// Reads a whole /proc file. These report a stat size of 0, so this reads until EOF
/// instead of trusting the size.
public func readProcFile(_ path: String) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw ProcFSError.system(path, errno) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let got = Syscall.valueOrErrno { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
        guard case .success(let n) = got else {
            if case .failure(let err) = got { throw ProcFSError.system(path, err.rawValue) }
            break
        }
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Writes `text` to a /proc file in one write (no create, truncate or sync: a proc file
/// takes its value from the write itself).
public func writeProcFile(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { throw ProcFSError.system(path, errno) }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw ProcFSError.system(path, errno) }
}

/// Names in a /proc directory, without "." and "..".
func listProcDirectory(_ path: String) throws -> [String] {
    guard let dir = opendir(path) else { throw ProcFSError.system(path, errno) }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// Numeric entries of a /proc directory (pids, tids, fds), sorted.
func listNumericEntries(_ path: String) throws -> [Int32] {
    try listProcDirectory(path).compactMap { Int32($0) }.sorted()
}

func procPath(_ pid: Int32, tid: Int32? = nil, _ file: String) -> String {
    if let tid { return "/proc/\(pid)/task/\(tid)/\(file)" }
    return "/proc/\(pid)/\(file)"
}
