import Foundation
import Images
import ProcFS

extension FileTableDump {
    /// EFD_SEMAPHORE travels as bit 0 of the flags: an eventfd is always O_RDWR, so the
    /// access-mode bit is free, and CRIU ignores it when it sets file status flags.
    static let eventfdSemaphore: UInt32 = 1

    static func eventfd(_ info: FdInfo, id: UInt32, flags: UInt32, at: String) throws -> EventfdFileEntry {
        guard let count = info.eventfdCount else {
            throw CheckpointError(.kernel, "\(at): eventfd without an eventfd-count line in fdinfo")
        }
        var e = EventfdFileEntry()
        e.id = id; e.fown = FownEntry.none; e.counter = count
        e.flags = (flags & ~UInt32(O_ACCMODE)) | (info.eventfdSemaphore ? eventfdSemaphore : 0)
        return e
    }

    static func signalfd(_ info: FdInfo, id: UInt32, flags: UInt32, at: String) throws -> SignalfdEntry {
        guard let mask = info.signalMask else {
            throw CheckpointError(.kernel, "\(at): signalfd without a sigmask line in fdinfo")
        }
        var s = SignalfdEntry()
        s.id = id; s.flags = flags; s.fown = FownEntry.none; s.sigmask = mask
        return s
    }

    static func timerfd(_ info: FdInfo, id: UInt32, flags: UInt32, at: String) throws -> TimerfdEntry {
        guard let t = info.timer else { throw CheckpointError(.kernel, "\(at): timerfd without clockid/ticks/it_value lines in fdinfo") }
        var e = TimerfdEntry()
        e.id = id; e.flags = flags; e.fown = FownEntry.none
        e.clockid = UInt32(bitPattern: t.clockID); e.ticks = t.ticks; e.settimeFlags = t.settimeFlags
        e.vsec = t.value.sec; e.vnsec = t.value.nsec; e.isec = t.interval.sec; e.insec = t.interval.nsec
        return e
    }
}
