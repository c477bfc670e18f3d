import Foundation
import LinuxKernel
import Images
import ProcFS

/// File locks held by the tree: flock(2), POSIX (fcntl F_SETLK) and OFD (F_OFD_SETLK)
/// locks, from the `lock:` lines of /proc/PID/fdinfo/N, which show each lock on the fd
/// that owns it; /proc/locks tells whether a tree process holds a lock no fd shows.
/// Written to filelocks.img as CRIU does; without `enabled` (--file-locks) a lock refuses the dump.
final class FileLocksDump {
    let enabled: Bool
    private(set) var entries: [FileLockEntry] = []
    private var seen: Set<String> = []
    /// "dev:ino" of the files whose locks were found, per tree process (host pid).
    private var found: [Int32: Set<String>] = [:]

    /// /proc/locks, asked for as soon as the tree is frozen: its read waits for an RCU grace
    /// period (fs/locks.c takes file_rwsem for writing), ~10-15 ms of frozen time otherwise.
    private let systemLocks: BackgroundWork<String>

    init(enabled: Bool) {
        self.enabled = enabled
        systemLocks = BackgroundWork { (try? readProcFile("/proc/locks")) ?? "" }
    }

    /// The locks shown on the fds of `pid` (`vpid` in the images); `fds` as FileTableDump wrote them.
    func add(pid: Int32, vpid: Int32, fds: [FdinfoEntry]) throws {
        for fd in fds {
            let info: FdInfo
            do { info = try FdInfo.read(pid: pid, fd: Int32(fd.fd)) } catch {
                throw CheckpointError(.kernel, "file locks of pid \(pid) fd \(fd.fd): \(error)")
            }
            for line in info.lines where line.hasPrefix("lock:") {
                let lock = try Self.parse(line, pid: pid, fd: fd.fd)
                guard enabled else {
                    let path = (try? ProcTree.link("/proc/\(pid)/fd/\(fd.fd)")) ?? "?"
                    throw CheckpointError(.unsupported, "pid \(pid) fd \(fd.fd): holds a \(lock.kindName) lock on \(path); dump with --file-locks to carry file locks")
                }
                found[pid, default: []].insert(lock.inode)
                // A flock/OFD lock belongs to the open file description, shown by every fd
                // on it; a POSIX lock to the process.
                let owner = lock.entry.flag == FileLockFlags.posix ? "p\(vpid)" : "d\(fd.id)"
                guard seen.insert("\(owner) \(lock.entry.flag) \(lock.inode) \(lock.entry.start) \(lock.entry.len)").inserted else { continue }
                var e = lock.entry
                e.pid = vpid
                e.fd = Int32(fd.fd)
                entries.append(e)
            }
        }
    }

    /// `lock:\t1: FLOCK  ADVISORY  WRITE 1234 00:2d:123 0 EOF` (fs/locks.c lock_get_status).
    static func parse(_ line: String, pid: Int32, fd: UInt32) throws -> (entry: FileLockEntry, kindName: String, inode: String) {
        let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        func bad() -> CheckpointError { CheckpointError(.kernel, "pid \(pid) fd \(fd): unexpected lock line '\(line)'") }
        guard f.count >= 9, f[0] == "lock:" else { throw bad() }
        var e = FileLockEntry()
        switch f[2] {
        case "POSIX": e.flag = FileLockFlags.posix
        case "FLOCK": e.flag = FileLockFlags.flock
        case "OFDLCK": e.flag = FileLockFlags.ofd
        case "LEASE": e.flag = FileLockFlags.lease
        default: throw CheckpointError(.unsupported, "pid \(pid) fd \(fd): a \(f[2]) lock (\(f[3])) cannot be dumped")
        }
        if e.flag == FileLockFlags.lease && f[3] != "ACTIVE" {
            // Putting a break back would signal the holder again (CRIU's restore does).
            throw CheckpointError(.unsupported, "pid \(pid) fd \(fd): a lease being broken (\(f[3])) cannot be restored without signalling its holder again")
        }
        guard f[3] == "ADVISORY" || e.flag == FileLockFlags.lease else { throw CheckpointError(.unsupported, "pid \(pid) fd \(fd): a \(f[3]) \(f[2]) lock cannot be dumped") }
        switch f[4] {
        case "READ": e.type = UInt32(F_RDLCK)
        case "WRITE": e.type = UInt32(F_WRLCK)
        default: throw CheckpointError(.unsupported, "pid \(pid) fd \(fd): a \(f[4]) \(f[2]) lock cannot be dumped")
        }
        guard let start = Int64(f[7]) else { throw bad() }
        e.start = start
        if f[8] == "EOF" { e.len = 0 } else {
            guard let end = Int64(f[8]) else { throw bad() }
            e.len = end + 1 - start
        }
        let dev = f[6].split(separator: ":")
        guard dev.count == 3 else { throw bad() }
        let names = [FileLockFlags.posix: "POSIX", FileLockFlags.flock: "flock", FileLockFlags.ofd: "OFD", FileLockFlags.lease: "lease"]
        return (e, names[e.flag]!, "\(dev[0]):\(dev[1]):\(dev[2])")
    }

    /// A POSIX or flock lock in /proc/locks whose holder is a tree process but which no fd
    /// of it shows (a flock kept by a mapping after close, say) cannot be put back.
    func checkAllFound(_ tree: FrozenTree) throws {
        let pids = Set(tree.processes.map(\.pid))
        let text = (try? systemLocks.wait()) ?? ""
        for line in text.split(separator: "\n") where !line.contains("->") {
            let f = line.split(separator: " ").map(String.init)
            guard f.count >= 8, f[1] == "POSIX" || f[1] == "FLOCK", let pid = Int32(f[4]), pids.contains(pid) else { continue }
            let dev = f[5].split(separator: ":")
            guard dev.count == 3 else { continue }
            let inode = "\(dev[0]):\(dev[1]):\(dev[2])"
            if found[pid]?.contains(inode) == true { continue }
            // flock locks name their creator, which may have passed the description on.
            if f[1] == "FLOCK" && found.values.contains(where: { $0.contains(inode) }) { continue }
            let what = enabled ? "which no open fd of the tree shows, so it cannot be restored" : "dump with --file-locks to carry file locks"
            throw CheckpointError(.unsupported, "pid \(pid) holds a \(f[1] == "FLOCK" ? "flock" : "POSIX") lock on inode \(inode), \(what)")
        }
    }

    func write(to images: ImageDirectory) throws {
        if enabled || !entries.isEmpty { try images.write(.fileLocks, entries) }
    }
}
