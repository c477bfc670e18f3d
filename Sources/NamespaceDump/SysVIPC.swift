import Foundation
import CShim
import LinuxKernel
import Images

/// SysV IPC syscalls of the calling thread's ipc namespace, raw (semctl is variadic in
/// glibc), each failure an error naming the object. x86_64 always uses the IPC_64 layouts,
/// which are glibc's shmid_ds/semid_ds/msqid_ds.
enum SysV {
    static let shmget = SyscallNumber.shmget, shmat = SyscallNumber.shmat, shmctl = SyscallNumber.shmctl
    static let semget = SyscallNumber.semget, semctl = SyscallNumber.semctl, shmdt = SyscallNumber.shmdt
    static let msgget = SyscallNumber.msgget, msgsnd = SyscallNumber.msgsnd, msgrcv = SyscallNumber.msgrcv
    static let msgctl = SyscallNumber.msgctl
    static let msgCopy: Int32 = 0o40000      // MSG_COPY: read message #n without removing it
    static let shmRdonly: Int32 = 0o10000
    static let shmDest: UInt32 = 0o1000      // mode bits the kernel adds to a segment
    static let shmLocked: UInt32 = 0o2000
    static let shmLock: Int32 = 11

    static func call(_ what: @autoclosure () -> String, _ nr: Int, _ a: Int = 0, _ b: Int = 0, _ c: Int = 0,
                     _ d: Int = 0, _ e: Int = 0) throws -> Int {
        try Syscall.raw(what(), nr, a, b, c, d, e)
    }

    /// The raw result: >= 0, or -errno.
    static func raw(_ nr: Int, _ a: Int = 0, _ b: Int = 0, _ c: Int = 0, _ d: Int = 0) -> Int {
        switch Syscall.result(nr, a, b, c, d) {
        case .success(let r): return r
        case .failure(let err): return -Int(err.rawValue)
        }
    }

    static func desc(id: Int32, _ p: ipc_perm) -> IpcDescEntry {
        var d = IpcDescEntry()
        d.id = UInt32(bitPattern: id)
        d.key = UInt32(bitPattern: p.__key)
        d.uid = p.uid
        d.gid = p.gid
        d.cuid = p.cuid
        d.cgid = p.cgid
        d.mode = UInt32(p.mode)
        return d
    }

    /// Every index an *_STAT command accepts: (id, stat) for indexes 0...maxIndex that hold
    /// an object; EINVAL marks an empty slot.
    static func scan<Stat>(_ kind: String, maxIndex: Int, _ stat: (Int, UnsafeMutablePointer<Stat>) -> Int,
                           empty: Stat) throws -> [(Int32, Stat)] {
        var found: [(Int32, Stat)] = []
        guard maxIndex >= 0 else { return found }
        for index in 0...maxIndex {
            var ds = empty
            let r = withUnsafeMutablePointer(to: &ds) { stat(index, $0) }
            if r == -Int(EINVAL) { continue }
            if r < 0 { throw CheckpointError.errno("stat \(kind) at index \(index)", Int32(-r)) }
            found.append((Int32(r), ds))
        }
        return found
    }
}

/// One SysV shared memory segment and its bytes.
public struct SharedMemorySegment: Equatable {
    public var desc: IpcDescEntry
    public var size: UInt64
    public var contents: Data
}

public struct SemaphoreSet: Equatable {
    public var desc: IpcDescEntry
    public var values: [UInt16]
}

public struct QueuedMessage: Equatable {
    public var type: Int
    public var text: Data
}

public struct MessageQueue: Equatable {
    public var desc: IpcDescEntry
    public var qbytes: UInt32
    public var messages: [QueuedMessage]
}

/// Everything an ipc namespace holds that the images record.
public struct IPCNamespaceContents {
    public var variables: IpcVarEntry
    public var segments: [SharedMemorySegment]
    public var semaphores: [SemaphoreSet]
    public var queues: [MessageQueue]
}
