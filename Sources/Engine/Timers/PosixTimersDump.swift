import Foundation
import LinuxKernel
import Images
import ProcFS

/// POSIX timers of a process (timer_create): /proc/PID/timers tells id, signal, value,
/// notification and clock; interval, remaining time and overrun are asked of the process
/// itself (timer_gettime, timer_getoverrun), since only it may name its timers.
enum PosixTimersDump {
    static func collect(_ process: FrozenTree.Process, task: TaskControl) throws -> [PosixTimerEntry] {
        let pid = process.pid
        let listed: [PosixTimerListing]
        do { listed = try PosixTimerListing.read(pid: pid) } catch {
            throw CheckpointError(.kernel, "posix timers of pid \(pid): \(error)")
        }
        return try listed.map { t in
            try check(t, process)
            try task.call("timer_gettime(\(t.id))", SyscallNumber.timerGettime, UInt64(t.id), task.data)
            let v = try task.readWords(task.data, count: 4)
            let overrun = try task.call("timer_getoverrun(\(t.id))", SyscallNumber.timerGetoverrun, UInt64(t.id))
            var e = PosixTimerEntry()
            e.itID = UInt32(bitPattern: t.id)
            e.clockID = UInt32(bitPattern: t.clock)
            e.siSigno = UInt32(bitPattern: t.signal)
            e.itSigevNotify = t.notify
            e.sivalPtr = t.value
            e.overrun = UInt32(truncatingIfNeeded: overrun)
            e.isec = v[0]; e.insec = v[1]; e.vsec = v[2]; e.vnsec = v[3]
            if t.notify & PosixTimerListing.sigevThreadID != 0 {
                guard let i = process.threads.firstIndex(of: t.target) else {
                    throw CheckpointError(.unsupported, "pid \(pid): posix timer \(t.id) signals thread \(t.target), which is not one of its threads")
                }
                e.notifyThreadID = process.vthreads[i]
            }
            return e
        }
    }

    /// CPU-time clocks of a given process or thread are encoded as negative clock ids
    /// (~pid << 3 | kind); only the caller's own (pid 0) can be made again.
    private static func check(_ t: PosixTimerListing, _ process: FrozenTree.Process) throws {
        guard t.clock < 0 else { return }
        if ~(t.clock >> 3) != 0 {
            throw CheckpointError(.unsupported, "pid \(process.pid): posix timer \(t.id) runs on the CPU clock of pid/tid \(~(t.clock >> 3)), which cannot be restored")
        }
        if t.clock & 4 != 0 && process.threads.count > 1 {
            throw CheckpointError(.unsupported, "pid \(process.pid): posix timer \(t.id) runs on the CPU clock of the thread that made it, which cannot be told among \(process.threads.count) threads")
        }
    }
}
