import Foundation
import LinuxKernel
import Images
import ProcFS

extension FileTableDump {
    /// An inotify instance and its watches, each with the path it watches (the restore
    /// adds the watches again by path, with the same watch descriptors).
    static func inotify(_ info: FdInfo, pid: Int32, fd: Int32, id: UInt32, flags: UInt32) throws -> InotifyFileEntry {
        try refuseQueuedEvents(pid: pid, fd: fd, kind: "inotify")
        var e = InotifyFileEntry()
        e.id = id; e.flags = flags; e.fown = FownEntry.none
        for w in try info.inotifyWatches {
            guard let wd = w.wd, let ino = w.ino, let sdev = w.sdev, let type = w.handleType else {
                throw CheckpointError(.kernel, "pid \(pid) fd \(fd): inotify watch line without wd/ino/sdev/fhandle")
            }
            var wde = InotifyWdEntry()
            wde.id = id; wde.iIno = ino; wde.mask = w.mask; wde.ignoredMask = w.ignoredMask
            wde.sDev = sdev; wde.wd = UInt32(bitPattern: wd)
            wde.fHandle = try fileHandle(w, type: type, pid: pid, what: "inotify fd \(fd) watch \(wd)")
            e.wd.append(wde)
        }
        return e
    }

    /// A fanotify group with its inode and mount marks; filesystem marks are refused.
    static func fanotify(_ info: FdInfo, pid: Int32, fd: Int32, id: UInt32, flags: UInt32) throws -> FanotifyFileEntry {
        try refuseQueuedEvents(pid: pid, fd: fd, kind: "fanotify")
        guard let init_ = info.fanotifyFlags else {
            throw CheckpointError(.kernel, "pid \(pid) fd \(fd): fanotify without a 'fanotify flags:' line in fdinfo")
        }
        var e = FanotifyFileEntry()
        e.id = id; e.flags = flags; e.fown = FownEntry.none; e.faflags = init_.flags; e.evflags = init_.eventFlags
        for m in try info.fanotifyMarks {
            var me = FanotifyMarkEntry()
            me.id = id; me.mflags = m.markFlags; me.mask = m.mask; me.ignoredMask = m.ignoredMask
            if let ino = m.ino, let sdev = m.sdev, let type = m.handleType {
                me.type = .inode; me.sDev = sdev
                var ie = FanotifyInodeMarkEntry()
                ie.iIno = ino
                ie.fHandle = try fileHandle(m, type: type, pid: pid, what: "fanotify fd \(fd)")
                me.ie = ie
            } else if let mnt = m.mountID {
                guard let path = try WatchedPath.mountPoint(pid: pid, id: mnt) else {
                    throw CheckpointError(.unsupported, "pid \(pid) fd \(fd): fanotify marks mount \(mnt), which the task cannot see")
                }
                me.type = .mount; me.sDev = 0
                var mm = FanotifyMountMarkEntry()
                mm.mntID = UInt32(bitPattern: mnt); mm.path = path
                me.me = mm
            } else {
                throw CheckpointError(.unsupported, "pid \(pid) fd \(fd): fanotify filesystem marks are not supported")
            }
            e.mark.append(me)
        }
        return e
    }

    private static func fileHandle(_ m: FdInfo.NotifyMark, type: Int32, pid: Int32, what: String) throws -> FhEntry {
        var fh = FhEntry()
        fh.bytes = UInt32(m.handle.count); fh.type = UInt32(bitPattern: type)
        // CRIU keeps the handle as 64-bit words, at least fh_entry_sizes.min_entries (16) of them.
        var words = [UInt64](repeating: 0, count: max(16, (m.handle.count + 7) / 8))
        for (i, b) in m.handle.enumerated() { words[i / 8] |= UInt64(b) << (8 * UInt64(i % 8)) }
        fh.handle = words
        fh.path = try WatchedPath.path(pid: pid, ino: m.ino ?? 0, sdev: m.sdev ?? 0, handleType: type, handle: m.handle, what: what)
        return fh
    }

    private static func refuseQueuedEvents(pid: Int32, fd: Int32, kind: String) throws {
        let n = try queuedBytes(pid: pid, fd: fd)
        if n > 0 {
            throw CheckpointError(.unsupported, "pid \(pid) fd \(fd): \(kind) has \(n) bytes of unread events, which cannot be dumped (read them first)")
        }
    }
}
