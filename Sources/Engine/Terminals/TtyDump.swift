import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

/// The Unix98 ptys of the dumped tree, as CRIU writes them: one TtyInfoEntry per side of a
/// pty in tty-info.img (id = index << 1, +1 for the master), a files.img entry of type TTY
/// per open description (after a REG entry with the device's path and the same id), and
/// tty-data.img with the bytes queued between a master and a slave that are both dumped.
/// A slave whose master is outside the tree is the terminal of a shell job (restored on
/// the restorer's own terminal) or, for runc, a container console (restored on a new pty
/// whose master goes back to runc); anything else with one is refused.
final class TtyDump {
    private struct Side {
        var info: TtyInfoEntry
        let terminal: Terminal
        let holder: (pid: Int32, fd: Int32, path: String)
    }

    private var sides: [UInt32: Side] = [:]
    private var queued: [TtyDataEntry] = []
    private var pidfds: [Int32: Int32] = [:]

    deinit {
        for s in sides.values { close(s.terminal.fd) }
        for fd in pidfds.values { close(fd) }
    }

    /// The REG and TTY entries for fd `fd` of `pid` when it is a pty; nil for any other device.
    /// The REG entry has an id of its own (`regID`, named by regf_id), as CRIU's: an fd of a
    /// second task on the description then resolves to the TTY entry, never to its path.
    func entries(pid: Int32, fd: Int32, path: String, st: stat, flags: UInt32, id: UInt32, regID: UInt32, mntID: Int32) throws -> (reg: FileEntry, tty: FileEntry)? {
        let isCurrentTty = st.st_rdev == 5 << 8  // /dev/tty: stands for the session's terminal
        guard isCurrentTty || Terminal.ptyKind(rdev: UInt64(st.st_rdev)) != nil else { return nil }
        let terminal = Terminal(fd: try takeFd(pid: pid, fd: fd), name: "\(path) (pid \(pid) fd \(fd))")
        var rdev = UInt64(st.st_rdev)
        if isCurrentTty {
            // The pty behind it is restored, and this description becomes one of its slave.
            var real: UInt32 = 0
            let r = withUnsafeMutablePointer(to: &real) { Syscall.result(SyscallNumber.ioctl, Int(terminal.fd), Int(bitPattern: Terminal.Request.tiocgdev), Int(bitPattern: $0)) }
            rdev = UInt64(real)  // new_encode_dev, the same as glibc's for pty numbers
            if case .failure = r { rdev = 0 }
            if case .success = r, Terminal.ptyKind(rdev: rdev) == nil {
                close(terminal.fd)
                throw CheckpointError(.unsupported, "pid \(pid) fd \(fd): /dev/tty stands for terminal \(rdev >> 8 & 0xfff):\(rdev & 0xff), which is no pty and cannot be restored")
            }
        }
        guard let kind = Terminal.ptyKind(rdev: rdev), !(isCurrentTty && kind.master) else { close(terminal.fd); return nil }
        let index: UInt32
        do { index = try kind.slaveIndex ?? terminal.index() } catch { close(terminal.fd); throw error }
        let infoID = index << 1 | (kind.master ? 1 : 0)
        if sides[infoID] == nil {
            do {
                sides[infoID] = Side(info: try Self.info(infoID, index: index, terminal: terminal, st: st), terminal: terminal, holder: (pid, fd, path))
            } catch { close(terminal.fd); throw error }
        } else {
            close(terminal.fd)
        }
        var reg = RegFileEntry()
        reg.id = regID; reg.flags = flags; reg.pos = 0; reg.fown = FownEntry.none; reg.name = path
        reg.mntID = mntID; reg.mode = st.st_mode; reg.size = 0
        var regFile = FileEntry()
        regFile.type = .reg; regFile.id = regID; regFile.reg = reg
        var tty = TtyFileEntry()
        tty.id = id; tty.ttyInfoID = infoID; tty.flags = flags; tty.fown = FownEntry.none; tty.regfID = regID
        var ttyFile = FileEntry()
        ttyFile.type = .tty; ttyFile.id = id; ttyFile.tty = tty
        return (regFile, ttyFile)
    }

    private static func info(_ id: UInt32, index: UInt32, terminal: Terminal, st: stat) throws -> TtyInfoEntry {
        var info = TtyInfoEntry()
        info.id = id
        info.type = .pty
        info.rdev = Terminal.ptyKind(rdev: UInt64(st.st_rdev)) != nil ? UInt32(truncatingIfNeeded: st.st_rdev) : (136 + index / 256) << 8 | index % 256
        info.dev = UInt32(truncatingIfNeeded: st.st_dev)
        var pty = TtyPtyEntry()
        pty.index = index
        info.pty = pty
        do {
            info.termios = try terminal.termios()
        } catch let e as CheckpointError where e.errno == .EIO {
            throw CheckpointError(.unsupported, "\(terminal.name): the terminal is hung up, which cannot be restored")
        }
        info.locked = try terminal.flag("TIOCGPTLCK", Terminal.Request.tiocgptlck)
        info.exclusive = try terminal.flag("TIOCGEXCL", Terminal.Request.tiocgexcl)
        info.packetMode = try terminal.flag("TIOCGPKT", Terminal.Request.tiocgpkt)
        info.termiosLocked = try terminal.termios(locked: true)
        info.winsize = try terminal.winsize()
        info.sid = 0; info.pgrp = 0
        // The slave's owner, as CRIU keeps it (grantpt gives it to the user of a login).
        if id & 1 == 0 { info.uid = st.st_uid; info.gid = st.st_gid }
        return info
    }

    /// Once every fd is seen: which session each pty controls, whether every slave has its
    /// master in the tree (or the caller said where its terminal comes from at restore),
    /// and the bytes queued between the sides of each dumped pair.
    func finish(tree: FrozenTree, shellJob: Bool, orphanPtsMaster: Bool, external: Set<String> = [], log: Log) throws {
        let unpaired = sides.values.filter { $0.info.id & 1 == 0 && sides[$0.info.id | 1] == nil }.sorted { $0.info.id < $1.info.id }
        // The key TtyRestore looks up in inherit_fd for such a slave.
        let named = unpaired.allSatisfy { external.contains("tty[\(String($0.info.rdev, radix: 16)):\(String($0.info.dev, radix: 16))]") }
        if let first = unpaired.first, !shellJob && !orphanPtsMaster && !named {
            throw CheckpointError(.unsupported, "pid \(first.holder.pid) fd \(first.holder.fd): terminal \(first.holder.path) belongs to a session outside the dumped tree; dump with --shell-job")
        }
        if unpaired.count > 1 {
            throw CheckpointError(.unsupported, "terminals \(unpaired.map(\.holder.path).joined(separator: ", ")) all have their master outside the dumped tree; only one such terminal can be restored")
        }
        for id in sides.keys {
            let index = id >> 1
            // /proc/PID/stat's tty_nr: the controlling terminal, as (136 + index / 256):(index % 256).
            let ttyNr = Int32(bitPattern: (136 + index / 256) << 8 | index % 256)
            guard let member = tree.processes.first(where: { !$0.isZombie && $0.stat.ttyNr == ttyNr }),
                  let leader = tree.processes.first(where: { $0.pid == member.stat.session }) else { continue }
            sides[id]!.info.sid = UInt32(leader.vpid)
            if let fg = tree.processes.first(where: { $0.stat.pgrp == member.stat.tpgid }) {
                sides[id]!.info.pgrp = UInt32(fg.vpgid)
            }
        }
        for master in sides.values where master.info.id & 1 == 1 {
            guard let slave = sides[master.info.id & ~1] else { continue }
            // Consumed, then written back at once, so the tree keeps them if it runs on.
            let toSlave = try slave.terminal.drain(), toMaster = try master.terminal.drain(packetMode: master.info.packetMode)
            if !toSlave.isEmpty { try master.terminal.write(toSlave); queued.append(Self.data(slave.info.id, toSlave)) }
            if !toMaster.isEmpty { try slave.terminal.write(toMaster); queued.append(Self.data(master.info.id, toMaster)) }
            log.info("pty \(master.info.pty.index): \(toSlave.count) bytes queued for the slave, \(toMaster.count) for the master")
        }
    }

    private static func data(_ id: UInt32, _ bytes: Data) -> TtyDataEntry {
        var e = TtyDataEntry()
        e.ttyID = id; e.data = bytes
        return e
    }

    func write(to images: ImageDirectory) throws {
        guard !sides.isEmpty else { return }
        // Each master before its slave: CRIU's restore makes the first entry of an index
        // the pty's opener, and only a master can open its slaves.
        try images.write(.ttyInfo, sides.values.map(\.info).sorted { ($0.id >> 1, ~$0.id & 1) < ($1.id >> 1, ~$1.id & 1) })
        if !queued.isEmpty { try images.write(.ttyData, queued) }
    }

    /// Our own descriptor on the same open file description (pidfd_getfd).
    private func takeFd(pid: Int32, fd: Int32) throws -> Int32 {
        if pidfds[pid] == nil {
            pidfds[pid] = Int32(try Syscall.raw("pidfd_open of pid \(pid)", SyscallNumber.pidfdOpen, Int(pid), 0))
        }
        return Int32(try Syscall.raw("pidfd_getfd of pid \(pid) fd \(fd)", SyscallNumber.pidfdGetfd, Int(pidfds[pid]!), Int(fd), 0))
    }
}
