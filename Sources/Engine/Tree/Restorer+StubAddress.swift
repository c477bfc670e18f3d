import Foundation
import LinuxKernel
import ProcFS

extension Restorer {
    /// A hole for the stub in every dumped address space and in ours.
    static func stubAddress(_ images: CheckpointImages) throws -> UInt64 {
        var taken: [(UInt64, UInt64)] = images.processes.flatMap { $0.mm.vmas.map { ($0.start, $0.end) } }
        taken += try ProcMaps.parse(maps: readProcFile("/proc/self/maps")).map { ($0.start, $0.end) }
        let size = RestoredProcess.stubSize
        var candidate: UInt64 = 0x1000_0000
        while candidate < 0x7f00_0000_0000 {
            let end = candidate + size
            if let clash = taken.first(where: { $0.0 < end && $0.1 > candidate }) {
                candidate = (clash.1 + 0xffff) & ~UInt64(0xffff)
            } else {
                return candidate
            }
        }
        throw CheckpointError(.invalidState, "no free address range for the restore stub")
    }
}
