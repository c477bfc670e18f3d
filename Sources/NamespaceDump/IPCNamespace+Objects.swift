import Foundation
import LinuxKernel
import Images

// Reading and recreating the objects, on a thread joined to the ipc namespace.
extension IPCNamespace {
    // MARK: sysctls

    static func readVariables() throws -> IpcVarEntry {
        var v = IpcVarEntry()
        v.semCtls = try Sysctl.readU32List("kernel/sem")
        guard v.semCtls.count == 4 else {
            throw CheckpointError(.kernel, "/proc/sys/kernel/sem: expected 4 values, read \(v.semCtls.count)")
        }
        v.msgCtlmax = try required("kernel/msgmax")
        v.msgCtlmnb = try required("kernel/msgmnb")
        v.msgCtlmni = try required("kernel/msgmni")
        v.autoMsgmni = Sysctl.exists("kernel/auto_msgmni") ? try required("kernel/auto_msgmni") : 0
        v.shmCtlmax = try Sysctl.readU64("kernel/shmmax") ?? UInt64.max
        v.shmCtlall = try Sysctl.readU64("kernel/shmall") ?? UInt64.max
        v.shmCtlmni = try required("kernel/shmmni")
        v.shmRmidForced = try required("kernel/shm_rmid_forced")
        v.mqQueuesMax = try required("fs/mqueue/queues_max")
        v.mqMsgMax = try required("fs/mqueue/msg_max")
        v.mqMsgsizeMax = try required("fs/mqueue/msgsize_max")
        if Sysctl.exists("fs/mqueue/msg_default") {
            v.mqMsgDefault = try required("fs/mqueue/msg_default")
            v.mqMsgsizeDefault = try required("fs/mqueue/msgsize_default")
        }
        // -1, their initial value, cannot be written back: leave them out (as CRIU does).
        if let n = try Sysctl.readU32("kernel/msg_next_id") { v.msgNextID = n }
        if let n = try Sysctl.readU32("kernel/sem_next_id") { v.semNextID = n }
        if let n = try Sysctl.readU32("kernel/shm_next_id") { v.shmNextID = n }
        return v
    }

    private static func required(_ name: String) throws -> UInt32 {
        guard let v = try Sysctl.readU32(name) else {
            throw CheckpointError(.kernel, "\(Sysctl.path(name)): unexpected value -1")
        }
        return v
    }

    /// The limits first (objects are created under them); the *_next_id knobs last.
    static func writeVariables(_ v: IpcVarEntry) throws {
        try Sysctl.write("kernel/sem", v.semCtls.map(String.init).joined(separator: " "))
        try Sysctl.write("kernel/msgmax", "\(v.msgCtlmax)")
        try Sysctl.write("kernel/msgmnb", "\(v.msgCtlmnb)")
        if Sysctl.exists("kernel/auto_msgmni") { try Sysctl.write("kernel/auto_msgmni", "\(v.autoMsgmni)") }
        try Sysctl.write("kernel/msgmni", "\(v.msgCtlmni)")
        try Sysctl.write("kernel/shmmax", "\(v.shmCtlmax)")
        try Sysctl.write("kernel/shmall", "\(v.shmCtlall)")
        try Sysctl.write("kernel/shmmni", "\(v.shmCtlmni)")
        try Sysctl.write("kernel/shm_rmid_forced", "\(v.shmRmidForced)")
        try Sysctl.write("fs/mqueue/queues_max", "\(v.mqQueuesMax)")
        try Sysctl.write("fs/mqueue/msg_max", "\(v.mqMsgMax)")
        try Sysctl.write("fs/mqueue/msgsize_max", "\(v.mqMsgsizeMax)")
        if v.hasMqMsgDefault { try Sysctl.write("fs/mqueue/msg_default", "\(v.mqMsgDefault)") }
        if v.hasMqMsgsizeDefault { try Sysctl.write("fs/mqueue/msgsize_default", "\(v.mqMsgsizeDefault)") }
    }

    static func writeNextIDs(_ v: IpcVarEntry) throws {
        if v.hasMsgNextID { try Sysctl.write("kernel/msg_next_id", "\(Int32(bitPattern: v.msgNextID))") }
        if v.hasSemNextID { try Sysctl.write("kernel/sem_next_id", "\(Int32(bitPattern: v.semNextID))") }
        if v.hasShmNextID { try Sysctl.write("kernel/shm_next_id", "\(Int32(bitPattern: v.shmNextID))") }
    }

    // MARK: shared memory

    static func readSegments() throws -> [SharedMemorySegment] {
        var info = shm_info()
        let maxIndex = try withUnsafeMutablePointer(to: &info) {
            try SysV.call("shmctl(SHM_INFO)", SysV.shmctl, 0, Int(SHM_INFO), Int(bitPattern: $0))
        }
        let found = try SysV.scan("shm segment", maxIndex: maxIndex, { index, ds in
            SysV.raw(SysV.shmctl, index, Int(SHM_STAT), Int(bitPattern: ds))
        }, empty: shmid_ds())
        guard found.count == Int(info.used_ids) else {
            throw CheckpointError(.invalidState, "shm segments changed while dumping: \(info.used_ids) in use, \(found.count) found")
        }
        return try found.map { id, ds in
            let size = Int(ds.shm_segsz)
            let address = try SysV.call("shmat shm segment \(id) to read it", SysV.shmat, Int(id), 0, Int(SysV.shmRdonly))
            defer { _ = SysV.raw(SysV.shmdt, address) }
            // FIXME: copies untouched pages too; skip holes as the page dump does.
            let contents = Data(bytes: UnsafeRawPointer(bitPattern: address)!, count: size)
            return SharedMemorySegment(desc: SysV.desc(id: id, ds.shm_perm), size: UInt64(size), contents: contents)
        }
    }

    static func createSegment(_ s: SharedMemorySegment, log: Log) throws {
        let id = Int32(bitPattern: s.desc.id)
        try Sysctl.write("kernel/shm_next_id", "\(id)")
        let flags = Int(s.desc.mode & 0o777) | Int(IPC_CREAT | IPC_EXCL)
        let got = try SysV.call("shmget key \(hex(s.desc.key)) size \(s.size) for shm segment \(id)", SysV.shmget,
                                Int(Int32(bitPattern: s.desc.key)), Int(s.size), flags)
        guard got == Int(id) else {
            throw CheckpointError(.invalidState, "shm segment \(id) was recreated as id \(got) (is the ipc namespace not empty?)")
        }
        try setOwner(s.desc, what: "shm segment \(id)", shmid_ds.self) { cmd, p in SysV.raw(SysV.shmctl, Int(id), cmd, Int(bitPattern: p)) }
        let address = try SysV.call("shmat shm segment \(id) to fill it", SysV.shmat, Int(id), 0, 0)
        defer { _ = SysV.raw(SysV.shmdt, address) }
        s.contents.withUnsafeBytes { src in
            if let base = src.baseAddress { UnsafeMutableRawPointer(bitPattern: address)!.copyMemory(from: base, byteCount: src.count) }
        }
        if s.desc.mode & SysV.shmLocked != 0 {
            let r = SysV.raw(SysV.shmctl, Int(id), Int(SysV.shmLock), 0)
            if r < 0 { log.warn("shm segment \(id): SHM_LOCK failed (\(Errno.describe(Int32(-r)))); restored unlocked") }
        }
        if s.desc.mode & SysV.shmDest != 0 {
            log.warn("shm segment \(id) was marked for removal (IPC_RMID while attached); restored as a live segment")
        }
    }

    // MARK: semaphores

    static func readSemaphores() throws -> [SemaphoreSet] {
        var info = seminfo()
        let maxIndex = try withUnsafeMutablePointer(to: &info) {
            try SysV.call("semctl(SEM_INFO)", SysV.semctl, 0, 0, Int(SEM_INFO), Int(bitPattern: $0))
        }
        let found = try SysV.scan("semaphore set", maxIndex: maxIndex, { index, ds in
            SysV.raw(SysV.semctl, index, 0, Int(SEM_STAT), Int(bitPattern: ds))
        }, empty: semid_ds())
        guard found.count == Int(info.semusz) else {
            throw CheckpointError(.invalidState, "semaphore sets changed while dumping: \(info.semusz) in use, \(found.count) found")
        }
        return try found.map { id, ds in
            var values = [UInt16](repeating: 0, count: Int(ds.sem_nsems))
            _ = try values.withUnsafeMutableBufferPointer {
                try SysV.call("semctl(GETALL) semaphore set \(id)", SysV.semctl, Int(id), 0, Int(GETALL), Int(bitPattern: $0.baseAddress))
            }
            return SemaphoreSet(desc: SysV.desc(id: id, ds.sem_perm), values: values)
        }
    }

    static func createSemaphores(_ s: SemaphoreSet) throws {
        let id = Int32(bitPattern: s.desc.id)
        try Sysctl.write("kernel/sem_next_id", "\(id)")
        let flags = Int(s.desc.mode & 0o777) | Int(IPC_CREAT | IPC_EXCL)
        let got = try SysV.call("semget key \(hex(s.desc.key)) nsems \(s.values.count) for semaphore set \(id)", SysV.semget,
                                Int(Int32(bitPattern: s.desc.key)), s.values.count, flags)
        guard got == Int(id) else {
            throw CheckpointError(.invalidState, "semaphore set \(id) was recreated as id \(got) (is the ipc namespace not empty?)")
        }
        try setOwner(s.desc, what: "semaphore set \(id)", semid_ds.self) { cmd, p in SysV.raw(SysV.semctl, Int(id), 0, cmd, Int(bitPattern: p)) }
        var values = s.values
        _ = try values.withUnsafeMutableBufferPointer {
            try SysV.call("semctl(SETALL) semaphore set \(id)", SysV.semctl, Int(id), 0, Int(SETALL), Int(bitPattern: $0.baseAddress))
        }
    }

    // MARK: message queues

    static func readQueues() throws -> [MessageQueue] {
        var info = msginfo()
        let maxIndex = try withUnsafeMutablePointer(to: &info) {
            try SysV.call("msgctl(MSG_INFO)", SysV.msgctl, 0, Int(MSG_INFO), Int(bitPattern: $0))
        }
        let found = try SysV.scan("message queue", maxIndex: maxIndex, { index, ds in
            SysV.raw(SysV.msgctl, index, Int(MSG_STAT), Int(bitPattern: ds))
        }, empty: msqid_ds())
        guard found.count == Int(info.msgpool) else {
            throw CheckpointError(.invalidState, "message queues changed while dumping: \(info.msgpool) in use, \(found.count) found")
        }
        let msgmax = Int(try Sysctl.readU32("kernel/msgmax") ?? 8192)
        var buffer = [UInt8](repeating: 0, count: 8 + msgmax)
        return try found.map { id, ds in
            var messages: [QueuedMessage] = []
            for n in 0..<Int(ds.msg_qnum) {
                let size = try buffer.withUnsafeMutableBytes { raw in
                    try SysV.call("msgrcv(MSG_COPY) message \(n) of queue \(id)", SysV.msgrcv, Int(id),
                                  Int(bitPattern: raw.baseAddress), msgmax, n, Int(IPC_NOWAIT | SysV.msgCopy))
                }
                let type = buffer.withUnsafeBytes { $0.loadUnaligned(as: Int.self) }
                messages.append(QueuedMessage(type: type, text: Data(buffer[8..<(8 + size)])))
            }
            return MessageQueue(desc: SysV.desc(id: id, ds.msg_perm), qbytes: UInt32(clamping: ds.msg_qbytes), messages: messages)
        }
    }

    static func createQueue(_ q: MessageQueue, log: Log) throws {
        let id = Int32(bitPattern: q.desc.id)
        try Sysctl.write("kernel/msg_next_id", "\(id)")
        let flags = Int(q.desc.mode & 0o777) | Int(IPC_CREAT | IPC_EXCL)
        let got = try SysV.call("msgget key \(hex(q.desc.key)) for message queue \(id)", SysV.msgget,
                                Int(Int32(bitPattern: q.desc.key)), flags)
        guard got == Int(id) else {
            throw CheckpointError(.invalidState, "message queue \(id) was recreated as id \(got) (is the ipc namespace not empty?)")
        }
        var ds = msqid_ds()
        _ = try withUnsafeMutablePointer(to: &ds) { try SysV.call("msgctl(IPC_STAT) queue \(id)", SysV.msgctl, Int(id), Int(IPC_STAT), Int(bitPattern: $0)) }
        ds.msg_perm.uid = q.desc.uid
        ds.msg_perm.gid = q.desc.gid
        ds.msg_perm.mode = q.desc.mode & 0o777
        let wantedBytes = UInt(q.qbytes)
        let oldBytes = ds.msg_qbytes
        ds.msg_qbytes = wantedBytes
        var r = withUnsafeMutablePointer(to: &ds) { SysV.raw(SysV.msgctl, Int(id), Int(IPC_SET), Int(bitPattern: $0)) }
        if r == -Int(EPERM) && wantedBytes > oldBytes {
            // Raising qbytes above msgmnb needs CAP_SYS_RESOURCE; keep the namespace's default
            // when the messages still fit.
            let total = q.messages.reduce(0) { $0 + $1.text.count }
            guard total <= Int(oldBytes) else {
                throw CheckpointError(.kernel, "message queue \(id): its \(total) queued bytes need qbytes \(wantedBytes), above msgmnb \(oldBytes), which needs CAP_SYS_RESOURCE")
            }
            log.warn("message queue \(id): qbytes \(wantedBytes) needs CAP_SYS_RESOURCE; kept \(oldBytes)")
            ds.msg_qbytes = oldBytes
            r = withUnsafeMutablePointer(to: &ds) { SysV.raw(SysV.msgctl, Int(id), Int(IPC_SET), Int(bitPattern: $0)) }
        }
        if r < 0 { throw CheckpointError.errno("msgctl(IPC_SET) owner and qbytes of message queue \(id)", Int32(-r)) }
        for (n, m) in q.messages.enumerated() {
            var buffer = [UInt8](repeating: 0, count: 8 + m.text.count)
            withUnsafeBytes(of: m.type) { buffer.replaceSubrange(0..<8, with: $0) }
            buffer.replaceSubrange(8..<(8 + m.text.count), with: m.text)
            _ = try buffer.withUnsafeBytes { raw in
                try SysV.call("msgsnd message \(n) (type \(m.type), \(m.text.count) bytes) to queue \(id)", SysV.msgsnd, Int(id),
                              Int(bitPattern: raw.baseAddress), m.text.count, Int(IPC_NOWAIT))
            }
        }
    }

    // MARK: helpers

    /// IPC_STAT, then IPC_SET with the dumped owner and permission bits (the creator ids
    /// stay ours: the kernel offers no way to set them).
    private static func setOwner<DS: IPCStat>(_ d: IpcDescEntry, what: String, _ type: DS.Type,
                                              _ ctl: (Int, UnsafeMutablePointer<DS>) -> Int) throws {
        var ds = DS.empty
        var r = withUnsafeMutablePointer(to: &ds) { ctl(Int(IPC_STAT), $0) }
        if r < 0 { throw CheckpointError.errno("IPC_STAT \(what)", Int32(-r)) }
        ds.perm.uid = d.uid
        ds.perm.gid = d.gid
        ds.perm.mode = d.mode & 0o777
        r = withUnsafeMutablePointer(to: &ds) { ctl(Int(IPC_SET), $0) }
        if r < 0 { throw CheckpointError.errno("IPC_SET owner \(d.uid):\(d.gid) mode \(String(d.mode & 0o777, radix: 8)) of \(what)", Int32(-r)) }
    }

    static func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }
}

protocol IPCStat {
    static var empty: Self { get }
    var perm: ipc_perm { get set }
}

extension shmid_ds: IPCStat {
    static var empty: shmid_ds { shmid_ds() }
    var perm: ipc_perm { get { shm_perm } set { shm_perm = newValue } }
}

extension semid_ds: IPCStat {
    static var empty: semid_ds { semid_ds() }
    var perm: ipc_perm { get { sem_perm } set { sem_perm = newValue } }
}
