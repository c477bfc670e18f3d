import Foundation
import LinuxKernel
import Images
import ProcFS

extension FileTableDump {
    static func timerfd(_ info: FdInfo, id: UInt32, flags: UInt32, at: String) throws -> TimerfdEntry {
        guard let t = info.timer else { throw CheckpointError(.kernel, "\(at): timerfd without clockid/ticks/it_value lines in fdinfo") }
        var e = TimerfdEntry()
        e.id = id; e.flags = flags; e.fown = FownEntry.none
        e.clockid = UInt32(bitPattern: t.clockID); e.ticks = t.ticks; e.settimeFlags = t.settimeFlags
        e.vsec = t.value.sec; e.vnsec = t.value.nsec; e.isec = t.interval.sec; e.insec = t.interval.nsec
        return e
    }
}
