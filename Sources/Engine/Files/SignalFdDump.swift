import Foundation
import LinuxKernel
import Images
import ProcFS

extension FileTableDump {
    static func signalfd(_ info: FdInfo, id: UInt32, flags: UInt32, at: String) throws -> SignalfdEntry {
        guard let mask = info.signalMask else {
            throw CheckpointError(.kernel, "\(at): signalfd without a sigmask line in fdinfo")
        }
        var s = SignalfdEntry()
        s.id = id; s.flags = flags; s.fown = FownEntry.none; s.sigmask = mask
        return s
    }
}
