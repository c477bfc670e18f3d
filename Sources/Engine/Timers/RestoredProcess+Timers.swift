import Foundation
import LinuxKernel
import Images

extension RestoredProcess {
    /// prctl(PR_TIMER_CREATE_RESTORE_IDS, ON/OFF): timer_create takes the id it is given (6.17+).
    private static let prTimerCreateRestoreIDs: UInt64 = 77

    /// POSIX timers with their dumped ids, clocks and notification, armed with the time
    /// they had left at the dump: the downtime does not count, as for a task that was
    /// frozen (a container's time namespace keeps its clocks' view the same way).
    /// After the threads exist (SIGEV_THREAD_ID names one), before seccomp.
    func restorePosixTimers() throws {
        let timers = image.main.tc.timers.posix.sorted { Int32(bitPattern: $0.itID) < Int32(bitPattern: $1.itID) }
        guard !timers.isEmpty else { return }
        let exact = try callRaw(on: nil, SyscallNumber.prctl, [Self.prTimerCreateRestoreIDs, 1, 0, 0, 0]) == 0
        var spare: [Int32] = []
        for t in timers {
            let want = Int32(bitPattern: t.itID)
            var event = bytes(t.sivalPtr) + bytes(t.siSigno) + bytes(t.itSigevNotify) + bytes(t.notifyThreadID)
            event += [UInt8](repeating: 0, count: 64 - event.count)
            let ev = try put(event, at: 0)
            while true {
                let idAddr = try put(value: want, at: 128)
                try call("timer_create(id \(want), clock \(Int32(bitPattern: t.clockID)))", SyscallNumber.timerCreate, UInt64(bitPattern: Int64(Int32(bitPattern: t.clockID))), ev, idAddr)
                let got = try readValue(idAddr, as: Int32.self)
                if got == want { break }
                // Without the prctl (before 6.17) ids come in order: make and later delete
                // timers until the wanted id comes up, as CRIU does.
                guard !exact, got < want, spare.count < 1 << 16 else {
                    throw CheckpointError(.invalidState, "pid \(pid): timer_create gave posix timer id \(got), not the dumped \(want)")
                }
                spare.append(got)
            }
        }
        if exact { try call("prctl(PR_TIMER_CREATE_RESTORE_IDS, OFF)", SyscallNumber.prctl, Self.prTimerCreateRestoreIDs, 0, 0, 0, 0) }
        for id in spare { try call("timer_delete(\(id))", SyscallNumber.timerDelete, UInt64(id)) }
        for t in timers where t.vsec != 0 || t.vnsec != 0 || t.isec != 0 || t.insec != 0 {
            // A periodic timer whose signal is still pending shows no time left: it goes
            // off again one interval on (the pending signal is restored on its own).
            let (vsec, vnsec) = t.vsec == 0 && t.vnsec == 0 ? (t.isec, t.insec) : (t.vsec, t.vnsec)
            let spec = try put([t.isec, t.insec, vsec, vnsec].flatMap(bytes), at: 0)
            try call("timer_settime(\(Int32(bitPattern: t.itID)))", SyscallNumber.timerSettime, UInt64(t.itID), 0, spec, 0)
        }
    }
}
