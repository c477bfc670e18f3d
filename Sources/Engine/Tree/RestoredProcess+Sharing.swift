import Foundation
import LinuxKernel
import Images

/// An fd table several restored processes share (CLONE_FILES): the first of them fills it,
/// and the restorer's pidfd placed in it serves each of them until the last is rebuilt.
final class SharedFdTable {
    /// Processes on this table not rebuilt yet.
    var users = 1
    var pidfd: Int32 = -1
    var filled = false
}

extension RestoredProcess {
    /// CLONE_FILES and CLONE_FS for `child` when its ids name this process's tables.
    func sharingFlags(for child: CheckpointImages.Process) -> UInt64 {
        var flags: UInt64 = 0
        if child.filesID == image.filesID { flags |= CloneFlags.files.rawValue }
        if let fs = image.fsID, child.fsID == fs { flags |= CloneFlags.fs.rawValue }
        return flags
    }

    /// Records that `child` was cloned with `flags` from this process.
    func adopt(_ child: RestoredProcess, sharing flags: UInt64) {
        if flags & CloneFlags.files.rawValue != 0 {
            let share = filesShare ?? SharedFdTable()
            filesShare = share
            share.users += 1
            child.filesShare = share
        }
        child.sharesParentFs = flags & CloneFlags.fs.rawValue != 0
    }

    /// The restorer's pidfd in this process's fd table, placed once per shared table.
    func restorerPidfd(inherited: Int32) throws -> Int32 {
        if let share = filesShare, share.pidfd >= 0 { return share.pidfd }
        let fd = try placeRestorerPidfd(inherited: inherited)
        filesShare?.pidfd = fd
        return fd
    }

    /// Closes it when the last process of its table no longer needs it.
    func dropRestorerPidfd(_ fd: Int32) throws {
        if let share = filesShare {
            share.users -= 1
            guard share.users == 0 else { return }
        }
        try call("close pidfd", SyscallNumber.close, UInt64(fd))
    }
}
