import Foundation
import LinuxKernel
import CShim
import Images

/// The tree's ptys rebuilt in the restorer, one at a time as the first file on each is
/// asked for: a new master from the tree's own /dev/ptmx (its devpts, for a container),
/// reopened until it has the dumped index; unlocked; every slave description opened from
/// it (TIOCGPTPEER, no path needed); termios, locked termios, window size, packet mode,
/// queued bytes, exclusive and lock state put back. A slave whose master was outside the
/// tree gets a terminal from outside again: an inherited fd (key "tty[rdev:dev]"), a new
/// pty whose master goes to the caller (runc's console socket), or the restorer's stdin
/// (--shell-job).
final class TtyRestore {
    private var infos: [UInt32: TtyInfoEntry] = [:]
    private var data: [UInt32: Data] = [:]
    private var fileInfo: [UInt32: UInt32] = [:]       // tty file id -> info id
    private var flags: [UInt32: UInt32] = [:]          // tty file id -> open flags
    private var masters: [UInt32: Int32] = [:]         // pty index -> our master (or outside slave)
    private var fds: [UInt32: Int32] = [:]             // tty file id -> our fd
    private var slaveModes: [UInt32: UInt32] = [:]     // slave tty-info id -> mode of /dev/pts/N
    private var outsideSlave: Int32 = -1
    private var restorersOwn: Set<UInt32> = []
    /// Ptys a restored session leader took as its controlling terminal.
    var controlled: Set<UInt32> = []
    private let options: RestoreOptions?
    private let log: Log
    private let ptys: PtyReservations

    init(images: CheckpointImages, session: RestoreSession) throws {
        options = session.options
        log = session.log
        ptys = session.ptys
        for f in images.files.values where f.type == .tty {
            fileInfo[f.id] = f.tty.ttyInfoID
            flags[f.id] = f.tty.flags
            if f.tty.ttyInfoID & 1 == 0, let reg = images.files[f.tty.regfID], reg.reg.hasMode { slaveModes[f.tty.ttyInfoID] = reg.reg.mode }
        }
        guard !fileInfo.isEmpty else { return }
        for i in try images.dir.read(.ttyInfo, as: TtyInfoEntry.self) {
            guard i.type == .pty, i.hasPty, i.hasTermios, i.hasWinsize else {
                throw CheckpointError(.image, "image \(images.dir.file(.ttyInfo)): terminal \(i.id) of type \(i.type) cannot be restored (only ptys with termios and window size)")
            }
            infos[i.id] = i
        }
        if images.dir.exists(.ttyData) {
            for d in try images.dir.read(.ttyData, as: TtyDataEntry.self) { data[d.ttyID] = d.data }
        }
        for (id, info) in fileInfo where infos[info] == nil {
            throw CheckpointError(.image, "\(ImageName.files): terminal file \(id) names tty-info \(info), missing from \(ImageName.ttyInfo)")
        }
    }

    deinit {
        for fd in fds.values { close(fd) }
        for fd in masters.values { close(fd) }
        if outsideSlave >= 0 { close(outsideSlave) }
        ptys.release()
    }

    /// Our fd for tty file `id`; `openPath` opens a path inside the tree's root.
    func fd(for id: UInt32, openPath: (String, Int32) -> Int32) throws -> Int32 {
        if let fd = fds[id] { return fd }
        guard let infoID = fileInfo[id], let info = infos[infoID] else { throw CheckpointError(.image, "files.img: no terminal with id \(id)") }
        try openPty(info.pty.index, openPath: openPath)
        guard let fd = fds[id] else { throw CheckpointError(.invalidState, "terminal file \(id): not opened with pty \(info.pty.index)") }
        return fd
    }

    private func openPty(_ index: UInt32, openPath: (String, Int32) -> Int32) throws {
        guard masters[index] == nil else { return }
        let masterInfo = infos[index << 1 | 1], slaveInfo = infos[index << 1]
        let master: Terminal
        if let masterInfo {
            master = try newPty(index, openPath: openPath)
            masters[index] = master.fd
            try apply(masterInfo, to: master)
            if masterInfo.packetMode { try master.setInt("TIOCPKT", Terminal.Request.tiocpkt, 1) }
            // One open of ptmx is one pty: its master has exactly one description.
            let ids = fileInfo.filter { $0.value == masterInfo.id }.map(\.key)
            guard ids.count == 1 else { throw CheckpointError(.image, "files.img: pty \(index) has \(ids.count) master descriptions") }
            fds[ids[0]] = fcntl(master.fd, F_DUPFD_CLOEXEC, 0)
            if fcntl(master.fd, F_SETFL, Int32(bitPattern: flags[ids[0]]!) & ~(O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC)) != 0 {
                throw CheckpointError.errno("set the flags of pty \(index)'s master")
            }
        } else {
            guard let slaveInfo else { return }
            try openOutside(slaveInfo, openPath: openPath)
            return
        }
        var firstSlave: Terminal?
        for (id, info) in fileInfo.sorted(by: { $0.key < $1.key }) where info == index << 1 {
            let fd = try master.openPeer(flags: Int32(bitPattern: flags[id]!))
            fds[id] = fd
            if firstSlave == nil { firstSlave = Terminal(fd: fd, name: "the slave of pty \(index)") }
        }
        if let slaveInfo, let slave = firstSlave {
            try apply(slaveInfo, to: slave)
            try restoreOwner(slaveInfo, of: slave)
            if let bytes = data[slaveInfo.id] { try master.write(bytes) }
            if let bytes = data[masterInfo!.id] { try slave.write(bytes) }
            if slaveInfo.exclusive { try slave.ioctl("TIOCEXCL", Terminal.Request.tiocexcl) }
        }
        if masterInfo?.locked == true { try master.setInt("TIOCSPTLCK", Terminal.Request.tiocsptlck, 1) }
    }

    /// The tree's slave whose master was outside it: from the caller, a new pty whose master
    /// goes to the caller, or the restorer's own terminal.
    private func openOutside(_ info: TtyInfoEntry, openPath: (String, Int32) -> Int32) throws {
        let index = info.pty.index
        let key = "tty[\(String(info.rdev, radix: 16)):\(String(info.dev, radix: 16))]"
        let slave: Int32
        var newMaster: Terminal?
        if let given = options?.inheritFds[key] {
            slave = fcntl(given, F_DUPFD_CLOEXEC, 0)
            if slave < 0 { throw CheckpointError.errno("inherited fd \(given) for \(key)") }
            log.info("terminal /dev/pts/\(index): the inherited fd \(given) (\(key))")
        } else if let handOver = options?.orphanPtsMaster {
            let master = try newPty(index, openPath: openPath)
            masters[index] = master.fd
            slave = try master.openPeer(flags: O_RDWR)
            newMaster = master
        } else if options?.shellJob == true {
            guard isatty(0) == 1 else {
                throw CheckpointError(.invalidArgument, "--shell-job: the tree's terminal /dev/pts/\(index) was outside the dump, and the restore's stdin is not a terminal to give it instead")
            }
            slave = fcntl(0, F_DUPFD_CLOEXEC, 0)
            if slave < 0 { throw CheckpointError.errno("dup of stdin") }
            restorersOwn.insert(index)
            log.info("terminal /dev/pts/\(index): the restorer's terminal (stdin), as a shell job")
        } else {
            throw CheckpointError(.invalidArgument, "terminal /dev/pts/\(index) had its master outside the dumped tree: restore with --shell-job (or through runc with a console socket)")
        }
        outsideSlave = fcntl(slave, F_DUPFD_CLOEXEC, 0)
        if masters[index] == nil { masters[index] = fcntl(slave, F_DUPFD_CLOEXEC, 0) }
        let terminal = Terminal(fd: slave, name: "the tree's terminal (pts \(index))")
        try apply(info, to: terminal)
        // Each description again with its own flags: the ones given may differ (stdin is read-only).
        for (id, i) in fileInfo where i == info.id {
            if let master = newMaster {
                fds[id] = try master.openPeer(flags: Int32(bitPattern: flags[id]!))
            } else {
                fds[id] = try reopen(terminal, flags: flags[id]!)
            }
        }
        close(slave)
        if let master = newMaster, let handOver = options?.orphanPtsMaster {
            try handOver(master.fd)
            log.info("terminal /dev/pts/\(index): a new pty, its master handed over (orphan-pts-master)")
        }
    }

    /// A new pty from the tree's /dev/ptmx, with the dumped index when it is free (CRIU
    /// opens ptmx until the kernel hands out that index). Otherwise the first one, logged:
    /// a task that opens /dev/pts/N by name again would not find it.
    private func newPty(_ index: UInt32, openPath: (String, Int32) -> Int32) throws -> Terminal {
        if let reserved = ptys.take(index) { return Terminal(fd: reserved, name: "the new pty \(index)") }
        var tried: [Int32] = []
        defer { tried.forEach { close($0) } }
        for _ in 0..<32 {
            let fd = openPath("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
            if fd < 0 { throw CheckpointError.errno("open /dev/ptmx for pty \(index)") }
            let t = Terminal(fd: fd, name: "the new pty for \(index)")
            let got = try t.index()
            if got == index {
                try t.setInt("TIOCSPTLCK", Terminal.Request.tiocsptlck, 0)
                return t
            }
            tried.append(fd)
            if got > index { break }
        }
        let t = Terminal(fd: tried.removeFirst(), name: "the new pty for \(index)")
        let got = try t.index()
        log.warn("pty \(index) is taken: restored as pty \(got); a task that reopens /dev/pts/\(index) by name will not find it")
        try t.setInt("TIOCSPTLCK", Terminal.Request.tiocsptlck, 0)
        return t
    }

    private func apply(_ info: TtyInfoEntry, to t: Terminal) throws {
        if info.hasTermiosLocked { try t.setTermios(info.termiosLocked, locked: true) }
        try t.setTermios(info.termios)
        try t.setWinsize(info.winsize)
    }

    /// The slave's owner and mode (/dev/pts/N is made anew, owned by the restorer).
    private func restoreOwner(_ info: TtyInfoEntry, of slave: Terminal) throws {
        if info.hasUid && info.hasGid, fchown(slave.fd, info.uid, info.gid) != 0 {
            throw CheckpointError.errno("chown \(slave.name) to \(info.uid):\(info.gid)")
        }
        if let mode = slaveModes[info.id], fchmod(slave.fd, mode_t(mode & 0o7777)) != 0 {
            throw CheckpointError.errno("chmod \(slave.name)")
        }
    }

    /// Another open file description of the same terminal, with its own flags.
    private func reopen(_ t: Terminal, flags: UInt32) throws -> Int32 {
        let fd = open("/proc/self/fd/\(t.fd)", Int32(bitPattern: flags) & ~(O_CREAT | O_EXCL | O_TRUNC) | O_NOCTTY | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("reopen \(t.name)") }
        return fd
    }

    // MARK: - Controlling terminals

    /// The terminal session `sid` had as its controlling terminal, with its foreground group.
    func controlling(sid: Int32) -> (info: TtyInfoEntry, index: UInt32)? {
        guard let info = infos.values.sorted(by: { $0.id < $1.id }).first(where: { $0.sid == UInt32(sid) && sid != 0 }) else { return nil }
        return (info, info.pty.index)
    }

    /// The restorer's stdin stands for this pty (--shell-job).
    func isRestorersOwn(_ index: UInt32) -> Bool { restorersOwn.contains(index) }

    /// A new descriptor on the slave of pty `index`, for TIOCSCTTY.
    func slaveForControl(_ index: UInt32, openPath: (String, Int32) -> Int32) throws -> Int32 {
        try openPty(index, openPath: openPath)
        guard let master = masters[index] else { throw CheckpointError(.invalidState, "pty \(index) was not rebuilt") }
        if infos[index << 1 | 1] == nil {
            let fd = fcntl(outsideSlave, F_DUPFD_CLOEXEC, 0)
            if fd < 0 { throw CheckpointError.errno("dup the tree's terminal") }
            return fd
        }
        return try Terminal(fd: master, name: "pty \(index)").openPeer(flags: O_RDWR)
    }
}
