import Foundation
import LinuxKernel
import CShim
import Images

/// POSIX message queues made again in the tree's ipc namespace (mq_open on a thread that
/// joined it), one holder fd of ours per queue; each dumped open description is a fresh
/// open of the holder through /proc with its own access mode and O_NONBLOCK.
/// A named queue that still exists (its namespace outlived the tree, as the host's does)
/// is the same queue: it is opened, not refilled. A queue we create gets its owner, mode
/// and messages back; an unlinked one is made under a temporary name and unlinked again.
final class MqueueRestore {
    private let queues: [UInt32: (entry: MqueueEntry, messages: [Data])]
    private var holders: [UInt64: Int32] = [:]
    /// Named queues this restore created, to unlink if the restore fails.
    private var created: [String] = []
    private var namespacePid: Int32 = 0

    init(images: CheckpointImages) { queues = images.mqueues }

    deinit { for fd in holders.values { close(fd) } }

    /// Our fd for the description with file id `id`; `pid` is a restored task in the tree's ipc namespace.
    func open(_ id: UInt32, namespaceOf pid: Int32) throws -> Int32 {
        guard let (e, _) = queues[id] else {
            throw CheckpointError(.image, "files.img: external file \(id) is not in mqueue.img (only POSIX message queues are restored)")
        }
        namespacePid = pid
        let holder = try holders[e.queueID] ?? makeHolder(e.queueID, pid: pid)
        let flags = (Int32(bitPattern: e.flags) & (O_ACCMODE | O_NONBLOCK)) | O_CLOEXEC
        let fd = Glibc.open("/proc/self/fd/\(holder)", flags)
        if fd < 0 { throw CheckpointError.errno("open POSIX message queue /\(e.name)") }
        return fd
    }

    private func makeHolder(_ queueID: UInt64, pid: Int32) throws -> Int32 {
        // The entry that carries the queue's messages (the first dumped of this queue).
        let all = queues.values.filter { $0.entry.queueID == queueID }
        let (e, messages) = all.first { !$0.messages.isEmpty } ?? all[0]
        let name = e.unlinked ? "ocicheckpoint-\(getpid())-\(queueID)" : e.name
        let what = "POSIX message queue /\(e.name)"
        let (fd, made) = try NamespaceJoin.run(in: pid, [.ipc]) { () throws -> (Int32, Bool) in
            var attr: [Int64] = [0, e.maxmsg, e.msgsize, 0, 0, 0, 0, 0]
            let mode = Int(e.mode & 0o777)
            let made = name.withCString { n in attr.withUnsafeMutableBytes {
                Syscall.result(SyscallNumber.mqOpen, Int(bitPattern: n), Int(O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC), mode, Int(bitPattern: $0.baseAddress)) } }
            if made == .failure(.EEXIST) && !e.unlinked {
                let fd = try name.withCString {
                    try Syscall.rawFd("open existing \(what)", SyscallNumber.mqOpen, Int(bitPattern: $0), Int(O_RDWR | O_NONBLOCK | O_CLOEXEC))
                }
                return (fd, false)
            }
            let fd = try made.get("mq_open \(what) (maxmsg \(e.maxmsg), msgsize \(e.msgsize))")
            if e.unlinked {
                _ = name.withCString { Syscall.result(SyscallNumber.mqUnlink, Int(bitPattern: $0)) }
            }
            return (Int32(fd), true)
        }
        holders[queueID] = fd
        if made {
            if !e.unlinked { created.append(name) }
            if fchown(fd, e.uid, e.gid) != 0 || fchmod(fd, mode_t(e.mode & 0o7777)) != 0 {
                throw CheckpointError.errno("set owner \(e.uid):\(e.gid) and mode \(String(e.mode, radix: 8)) of \(what)")
            }
            for (m, prio) in zip(messages, e.msgPrio) {
                try m.withUnsafeBytes {
                    _ = try Syscall.raw("refill \(what) with a \(m.count)-byte message", SyscallNumber.mqTimedsend, Int(fd), Int(bitPattern: $0.baseAddress), m.count, Int(prio))
                }
            }
        } else {
            var attr = [Int64](repeating: 0, count: 8)
            try attr.withUnsafeMutableBytes {
                try Syscall.raw("mq_getattr of \(what)", SyscallNumber.mqGetsetattr, Int(fd), 0, Int(bitPattern: $0.baseAddress))
            }
            if attr[1] != e.maxmsg || attr[2] != e.msgsize {
                throw CheckpointError(.busy, "\(what) exists with maxmsg \(attr[1]), msgsize \(attr[2]), not the dumped \(e.maxmsg), \(e.msgsize)")
            }
        }
        return fd
    }

    /// After a failed restore: the named queues this restore made go away again.
    func removeCreated() {
        guard namespacePid > 0, !created.isEmpty else { return }
        let names = created
        created = []
        _ = try? NamespaceJoin.run(in: namespacePid, [.ipc]) {
            for n in names { _ = n.withCString { Syscall.result(SyscallNumber.mqUnlink, Int(bitPattern: $0)) } }
        }
    }
}

extension MqueueRestore {
    /// mqueue.img by file id, with the messages of each entry.
    static func read(_ dir: ImageDirectory) throws -> [UInt32: (entry: MqueueEntry, messages: [Data])] {
        var out: [UInt32: (MqueueEntry, [Data])] = [:]
        guard dir.exists(.mqueue) else { return out }
        var r = try dir.reader(.mqueue)
        do {
            while let e = try r.next(MqueueEntry.self) {
                guard e.msgPrio.count == e.msgLen.count else {
                    throw CheckpointError(.image, "image \(dir.file(.mqueue)): queue /\(e.name) lists \(e.msgPrio.count) priorities for \(e.msgLen.count) messages")
                }
                out[e.id] = (e, try e.msgLen.map { try r.raw(Int($0)) })
            }
        } catch let e as ImageError { throw e.checkpointError }
        return out
    }
}
