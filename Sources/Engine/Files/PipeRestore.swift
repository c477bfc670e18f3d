import Foundation
import LinuxKernel
import CShim
import Images

/// The bytes a pipe or FIFO held at the dump and the capacity it had (F_GETPIPE_SZ).
struct QueuedPipe {
    var capacity: Int32
    var bytes: Data
}

/// Pipes and FIFOs made again in the restorer: one kernel pipe per dumped pipe id, and
/// one open file description per dumped file id. Descriptions of the same end stay apart
/// (each has its own O_NONBLOCK), so only the first one of each end is a dup of the pipe's
/// own fd; the others are opened anew through /proc/self/fd, as CRIU does.
final class PipeRestore {
    private var pipes: [UInt32: (read: Int32, write: Int32)] = [:]
    private var endsGiven: Set<Int32> = []
    private var fifoHolders: [UInt32: Int32] = [:]   // pipe id -> read-write FIFO holder
    private let queued: [UInt32: QueuedPipe]
    private let fifoQueued: [UInt32: QueuedPipe]

    init(pipes: [UInt32: QueuedPipe], fifos: [UInt32: QueuedPipe]) {
        queued = pipes
        fifoQueued = fifos
    }

    deinit {
        for (r, w) in pipes.values { close(r); close(w) }
        for fd in fifoHolders.values { close(fd) }
    }

    /// pipes-data.img / fifo-data.img: every entry, by pipe id.
    static func read(_ image: ImageName, _ dir: ImageDirectory) throws -> [UInt32: QueuedPipe] {
        var out: [UInt32: QueuedPipe] = [:]
        guard dir.exists(image) else { return out }
        var r = try dir.reader(image)
        do {
            while let e = try r.next(PipeDataEntry.self) {
                out[e.pipeID] = QueuedPipe(capacity: e.hasSize ? Int32(bitPattern: e.size) : 0, bytes: try r.raw(Int(e.bytes)))
            }
        } catch let e as ImageError { throw e.checkpointError }
        return out
    }

    /// A new description of pipe `p`'s end, with the dumped flags.
    func end(_ p: PipeEntry) throws -> Int32 {
        if pipes[p.pipeID] == nil {
            let ends = try Syscall.pipe("pipe2 for pipe \(p.pipeID)")
            pipes[p.pipeID] = (ends[0], ends[1])
            if let q = queued[p.pipeID] { try Self.fill(ends[1], q, "pipe \(p.pipeID)") }
        }
        let pair = pipes[p.pipeID]!
        let accMode = Int32(p.flags) & O_ACCMODE
        let own = accMode == O_WRONLY ? pair.write : pair.read
        let fd: Int32
        if endsGiven.insert(own).inserted {
            fd = fcntl(own, F_DUPFD_CLOEXEC, 0)
        } else {
            fd = open("/proc/self/fd/\(own)", accMode | O_CLOEXEC)
        }
        if fd < 0 { throw CheckpointError.errno("open an end of pipe \(p.pipeID)") }
        if fcntl(fd, F_SETFL, Int32(bitPattern: p.flags) & ~O_ACCMODE & ~O_ASYNC) != 0 {
            close(fd)
            throw CheckpointError.errno("set flags of pipe \(p.pipeID)")
        }
        return fd
    }

    /// A new description of the FIFO `f` at `path` (its name, or the one made for it when
    /// it was deleted), opened with `open` (in the tree's root).
    func fifo(_ f: FifoEntry, _ reg: RegFileEntry, at path: String, open openPath: (String, Int32) -> Int32) throws -> Int32 {
        // One read-write holder per FIFO keeps its buffer alive and lets the final opens
        // (through /proc, with the dumped access mode) proceed without blocking.
        if fifoHolders[f.pipeID] == nil {
            let holder = openPath(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
            if holder < 0 { throw CheckpointError.errno("open FIFO \(reg.name)") }
            fifoHolders[f.pipeID] = holder
            if let q = fifoQueued[f.pipeID] { try Self.fill(holder, q, "FIFO \(reg.name)") }
        }
        let flags = Int32(bitPattern: reg.flags & ~UInt32(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_ASYNC))
        let fd = open("/proc/self/fd/\(fifoHolders[f.pipeID]!)", flags | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open FIFO \(reg.name)") }
        return fd
    }

    /// The dumped capacity first (a pipe cannot shrink below what it holds), then the bytes.
    private static func fill(_ fd: Int32, _ q: QueuedPipe, _ what: String) throws {
        let now = fcntl(fd, FileControl.getPipeSize)
        // Images without a capacity (older CRIU) only need room for the bytes.
        let capacity = q.capacity > 0 ? q.capacity : max(now, Int32(q.bytes.count))
        if capacity != now && fcntl(fd, FileControl.setPipeSize, capacity) < 0 {
            throw CheckpointError.errno("set the capacity of \(what) to \(capacity) bytes")
        }
        if q.bytes.isEmpty { return }
        let n = q.bytes.withUnsafeBytes { write(fd, $0.baseAddress, q.bytes.count) }
        if n != q.bytes.count { throw CheckpointError.errno("refill \(what) with \(q.bytes.count) bytes") }
    }
}
