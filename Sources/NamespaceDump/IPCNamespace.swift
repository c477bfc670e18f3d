import Foundation
import LinuxKernel
import Images

/// ipcns-var/shm/sem/msg-<id>.img: the sysctls, shared memory segments (with their bytes),
/// semaphore sets (with their values) and message queues (with their messages, in order)
/// of an ipc namespace, laid out as CRIU's criu/ipc_ns.c writes them.
public enum IPCNamespace {
    /// Reads the ipc namespace of `pid` (its tasks should be stopped, so nothing changes).
    public static func read(pid: Int32) throws -> IPCNamespaceContents {
        try NamespaceJoin.run(in: pid, [.ipc]) {
            IPCNamespaceContents(variables: try readVariables(),
                                 segments: try readSegments(),
                                 semaphores: try readSemaphores(),
                                 queues: try readQueues())
        }
    }

    public static func dump(pid: Int32, id: UInt32, images: ImageDirectory, log: Log) throws {
        let c = try read(pid: pid)
        try images.write(.ipcnsVar(id), [c.variables])
        try write(images, .ipcnsShm(id)) { w in
            for s in c.segments {
                var e = IpcShmEntry()
                e.desc = s.desc
                e.size = s.size
                try w.append(e)
                try w.appendRaw(padded(s.contents, to: 4))
            }
        }
        try write(images, .ipcnsSem(id)) { w in
            for s in c.semaphores {
                var e = IpcSemEntry()
                e.desc = s.desc
                e.nsems = UInt32(s.values.count)
                try w.append(e)
                var bytes = Data(capacity: s.values.count * 2)
                for v in s.values { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
                try w.appendRaw(padded(bytes, to: 8))
            }
        }
        try write(images, .ipcnsMsg(id)) { w in
            for q in c.queues {
                var e = IpcMsgEntry()
                e.desc = q.desc
                e.qbytes = q.qbytes
                e.qnum = UInt32(q.messages.count)
                try w.append(e)
                for m in q.messages {
                    var h = IpcMsg()
                    h.mtype = UInt64(bitPattern: Int64(m.type))
                    h.msize = UInt32(m.text.count)
                    try w.append(h)
                    try w.appendRaw(padded(m.text, to: 8))
                }
            }
        }
        log.info("ipc namespace of pid \(pid): \(c.segments.count) shm segments (\(c.segments.reduce(0) { $0 + $1.size }) bytes), \(c.semaphores.count) semaphore sets, \(c.queues.count) message queues (\(c.queues.reduce(0) { $0 + $1.messages.count }) messages)")
    }

    /// Reads the four images of namespace `id` back.
    public static func load(id: UInt32, images: ImageDirectory) throws -> IPCNamespaceContents {
        let variables = try images.readOne(.ipcnsVar(id), as: IpcVarEntry.self)
        var segments: [SharedMemorySegment] = []
        var semaphores: [SemaphoreSet] = []
        var queues: [MessageQueue] = []
        try read(images, .ipcnsShm(id)) { r in
            while let e = try r.next(IpcShmEntry.self) {
                if e.inPagemaps {
                    throw CheckpointError(.unsupported, "image \(images.file(.ipcnsShm(id))): shm segment \(e.desc.id) keeps its contents in pagemap-shmem images (CRIU's in_pagemaps), which are not supported yet")
                }
                guard e.size <= UInt64(Int.max - 8) else { throw ImageError(r.path, "shm segment \(e.desc.id): size \(e.size) too large") }
                let bytes = try r.raw(roundUp(Int(e.size), 4))
                segments.append(SharedMemorySegment(desc: e.desc, size: e.size, contents: bytes.prefix(Int(e.size))))
            }
        }
        try read(images, .ipcnsSem(id)) { r in
            while let e = try r.next(IpcSemEntry.self) {
                let bytes = try r.raw(roundUp(Int(e.nsems) * 2, 8))
                let values = (0..<Int(e.nsems)).map { i in
                    UInt16(bytes[bytes.startIndex + 2 * i]) | UInt16(bytes[bytes.startIndex + 2 * i + 1]) << 8
                }
                semaphores.append(SemaphoreSet(desc: e.desc, values: values))
            }
        }
        try read(images, .ipcnsMsg(id)) { r in
            while let e = try r.next(IpcMsgEntry.self) {
                var messages: [QueuedMessage] = []
                for n in 0..<e.qnum {
                    guard let h = try r.next(IpcMsg.self) else {
                        throw ImageError(r.path, "queue \(e.desc.id): message \(n) of \(e.qnum) missing")
                    }
                    let bytes = try r.raw(roundUp(Int(h.msize), 8))
                    messages.append(QueuedMessage(type: Int(Int64(bitPattern: h.mtype)), text: bytes.prefix(Int(h.msize))))
                }
                queues.append(MessageQueue(desc: e.desc, qbytes: e.qbytes, messages: messages))
            }
        }
        return IPCNamespaceContents(variables: variables, segments: segments, semaphores: semaphores, queues: queues)
    }

    /// Recreates the namespace's objects in `pid`'s (new, empty) ipc namespace, each with its
    /// dumped key and id, then leaves the *_next_id knobs as they were dumped.
    public static func restore(pid: Int32, id: UInt32, images: ImageDirectory, log: Log) throws {
        let c = try load(id: id, images: images)
        try NamespaceJoin.run(in: pid, [.ipc]) {
            try writeVariables(c.variables)
            for s in c.segments { try createSegment(s, log: log) }
            for q in c.queues { try createQueue(q, log: log) }
            for s in c.semaphores { try createSemaphores(s) }
            try writeNextIDs(c.variables)
        }
        log.info("ipc namespace of pid \(pid): \(c.segments.count) shm segments, \(c.semaphores.count) semaphore sets, \(c.queues.count) message queues restored")
    }

    // MARK: image helpers

    static func roundUp(_ n: Int, _ to: Int) -> Int { (n + to - 1) / to * to }

    static func padded(_ d: Data, to: Int) -> Data {
        var d = d
        d.append(Data(count: roundUp(d.count, to) - d.count))
        return d
    }

    private static func write(_ images: ImageDirectory, _ image: ImageName,
                              _ body: (ImageWriter) throws -> Void) throws {
        let w = try images.writer(image)
        do {
            try body(w)
            try w.close()
        } catch let e as ImageError { throw e.checkpointError }
    }

    private static func read(_ images: ImageDirectory, _ image: ImageName,
                             _ body: (inout ImageReader) throws -> Void) throws {
        var r = try images.reader(image)
        do { try body(&r) } catch let e as ImageError { throw e.checkpointError }
    }
}
