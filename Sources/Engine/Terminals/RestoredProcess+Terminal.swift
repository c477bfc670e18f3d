import Foundation
import LinuxKernel
import Images

extension RestoredProcess {
    /// A session leader takes its controlling terminal back (TIOCSCTTY, from inside) right
    /// after setsid and before it has children: they inherit it as they are created.
    func takeControllingTerminal(resources: RestoreResources, pidfd: Int32) throws {
        let terminals = resources.terminals
        guard let (_, index) = terminals.controlling(sid: pid) else { return }
        try withTerminal(resources, index, pidfd: pidfd) { fd in
            do {
                try call("ioctl TIOCSCTTY", SyscallNumber.ioctl, UInt64(fd), UInt64(Terminal.Request.tiocsctty), 0)
                terminals.controlled.insert(index)
            } catch let e as CheckpointError where terminals.isRestorersOwn(index) && e.errno == .EPERM {
                // --shell-job: the restorer's terminal controls another session (its shell's).
                resources.session.log.warn("pid \(pid): the restorer's terminal controls another session; it stays without a controlling terminal")
            }
        }
    }

    /// The leader sets its terminal's foreground group (TIOCSPGRP) once every group exists.
    func restoreForegroundGroup(resources: RestoreResources, pidfd: Int32) throws {
        let terminals = resources.terminals
        guard image.entry.sid == image.entry.pid, let (info, index) = terminals.controlling(sid: pid),
              terminals.controlled.contains(index), info.pgrp != 0 else { return }
        try withTerminal(resources, index, pidfd: pidfd) { fd in
            let pgrp = try put(value: Int32(info.pgrp), at: 0)
            try call("ioctl TIOCSPGRP \(info.pgrp)", SyscallNumber.ioctl, UInt64(fd), UInt64(Terminal.Request.tiocspgrp), pgrp)
        }
        resources.session.log.info("pid \(pid): controlling terminal pty \(index), foreground group \(info.pgrp)")
    }

    /// Runs `body` with a descriptor of this task on the slave of pty `index`, closed after.
    private func withTerminal(_ resources: RestoreResources, _ index: UInt32, pidfd: Int32, _ body: (Int32) throws -> Void) throws {
        let ours = try resources.terminals.slaveForControl(index) { resources.openPath($0, $1) }
        defer { close(ours) }
        let fd = try takeFd(ours, pidfd: pidfd)
        defer { _ = try? call("close", SyscallNumber.close, UInt64(fd)) }
        try body(fd)
    }
}
