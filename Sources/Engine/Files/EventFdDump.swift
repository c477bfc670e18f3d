import Foundation
import LinuxKernel
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
}
