import Foundation
import LinuxKernel
import Images
import ProcFS

extension RestoredProcess {
    /// The audit login uid, when it differs from the one the stub inherited. The kernel
    /// lets only the task itself write its loginuid: the restorer opens the stub's
    /// /proc/PID/loginuid (so no path has to resolve inside the tree's root) and the stub
    /// writes it. Threads made after this inherit it.
    func restoreLoginuid(pidfd: Int32) throws {
        let tc = image.main.tc
        guard tc.hasLoginuid else { return }
        let path = "/proc/\(hostPid)/loginuid"
        let current = (try? readProcFile(path))?.trimmingCharacters(in: .whitespacesAndNewlines)
        guard current != String(tc.loginuid) else { return }
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open \(path) to restore loginuid \(tc.loginuid) of pid \(pid)") }
        defer { close(fd) }
        let theirs = try takeFd(fd, pidfd: pidfd)
        let text = Array(String(tc.loginuid).utf8)
        let r = try callRaw(on: nil, SyscallNumber.write, [UInt64(theirs), try put(text), UInt64(text.count)])
        try call("close", SyscallNumber.close, UInt64(theirs))
        if r < 0 { throw CheckpointError.errno("write loginuid \(tc.loginuid) in pid \(pid) (audit may forbid changing a set loginuid)", Int32(-r)) }
    }
}

extension TaskControl {
    /// Takes every membarrier registration of the dumped mm again: the mask holds the
    /// MEMBARRIER_CMD_REGISTER_* commands themselves, one bit each.
    func restoreMembarriers(_ mask: UInt32) throws {
        for bit in 0..<32 where mask & (1 << UInt32(bit)) != 0 {
            try call("membarrier(register \(1 << bit))", SyscallNumber.membarrier, UInt64(1) << UInt64(bit), 0, 0)
        }
    }
}
