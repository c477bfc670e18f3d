import Foundation
import LinuxKernel
import CShim
import Images

extension RestoreResources {
    /// Re-armed with the time that was left at the dump (an absolute timer gets the same
    /// distance from now on its clock), then the expirations nobody had read yet are put
    /// back with TFD_IOC_SET_TICKS (settime clears them).
    static func openTimerfd(_ t: TimerfdEntry, _ what: String) throws -> Int32 {
        let fd = try Syscall.rawFd("timerfd_create clock \(t.clockid) for \(what)", SyscallNumber.timerfdCreate,
                                   Int(Int32(bitPattern: t.clockid)), Int(t.flags & UInt32(O_NONBLOCK)) | Int(O_CLOEXEC))
        do {
            // A periodic timer that expired and waits for a read to re-arm shows no time
            // left: it is armed one interval ahead, its unread ticks are set below.
            let (vsec, vnsec) = t.vsec == 0 && t.vnsec == 0 ? (t.isec, t.insec) : (t.vsec, t.vnsec)
            if vsec != 0 || vnsec != 0 {
                var sec = vsec, nsec = vnsec
                if t.settimeFlags & 1 /* TFD_TIMER_ABSTIME */ != 0 {
                    var now = Glibc.timespec()
                    // The alarm clocks read as their plain counterparts.
                    let clock = t.clockid == 8 ? 0 : t.clockid == 9 ? 7 : t.clockid
                    clock_gettime(clockid_t(clock), &now)
                    nsec += UInt64(now.tv_nsec); sec += UInt64(now.tv_sec) + nsec / 1_000_000_000; nsec %= 1_000_000_000
                }
                var spec: (UInt64, UInt64, UInt64, UInt64) = (t.isec, t.insec, sec, nsec)
                try withUnsafeMutablePointer(to: &spec) {
                    _ = try Syscall.raw("timerfd_settime for \(what)", SyscallNumber.timerfdSettime, Int(fd), Int(t.settimeFlags), Int(bitPattern: $0))
                }
            }
            if t.ticks > 0 {
                var ticks = t.ticks
                try withUnsafeMutablePointer(to: &ticks) {
                    _ = try Syscall.raw("TFD_IOC_SET_TICKS \(t.ticks) for \(what)", SyscallNumber.ioctl, Int(fd), 0x4008_5400 /* TFD_IOC_SET_TICKS */, Int(bitPattern: $0))
                }
            }
        } catch { close(fd); throw error }
        return fd
    }
}
