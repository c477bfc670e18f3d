import Foundation
import LinuxKernel
import Images
import ProcFS

extension FileTableDump {
    static func eventfd(_ info: FdInfo, id: UInt32, flags: UInt32, at: String) throws -> EventfdFileEntry {
        guard let count = info.eventfdCount else {
            throw CheckpointError(.kernel, "\(at): eventfd without an eventfd-count line in fdinfo")
        }
        var e = EventfdFileEntry()
        e.id = id; e.fown = FownEntry.none; e.counter = count
        e.flags = (flags & ~UInt32(O_ACCMODE)) | (info.eventfdSemaphore ? EventfdFlags.semaphore : 0)
        return e
    }
}
