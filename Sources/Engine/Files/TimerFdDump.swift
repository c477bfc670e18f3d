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
        // A periodic timer that expired and waits for a read to re-arm shows no time left;
        // saved as one interval ahead, since a restore that sets no time left (CRIU's)
        // disarms it and the ticks stop.
        if e.vsec == 0 && e.vnsec == 0 { e.vsec = e.isec; e.vnsec = e.insec }
        return e
    }
}
