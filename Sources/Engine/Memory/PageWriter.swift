import Foundation
import LinuxKernel
import CShim
import Images

/// VMA_AREA_AIORING and VMA_AREA_GUARD of CRIU's image.h: an io_setup ring, and a range
/// of MADV_GUARD_INSTALL guards (no area of its own: such entries follow every real one).
extension VmaStatus {
    static let aioRing: UInt32 = 1 << 13
    static let guardRegion: UInt32 = 1 << 16
}

/// Bytes for another process's memory: where they go and where they are now (usually
/// inside a mapped pages image).
struct PagePiece {
    var address: UInt64
    var data: UnsafeRawPointer
    var length: Int
}

extension RemoteMemory {
    /// Writes every piece with as few process_vm_writev calls as IOV_MAX allows: the
    /// local and remote vectors are both scattered, so nothing is copied in between.
    func scatterIn(_ pieces: [PagePiece]) throws {
        var index = 0
        while index < pieces.count {
            let batch = Array(pieces[index..<min(index + 1024, pieces.count)])
            var remote = batch.map { iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt($0.address)), iov_len: $0.length) }
            var local = batch.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.data), iov_len: $0.length) }
            var first = 0
            // A partial write stops inside or after a piece: go on from there.
            while first < batch.count {
                let n = local[first...].withUnsafeBufferPointer { l in
                    remote[first...].withUnsafeBufferPointer { r in
                        oc_process_vm_writev(pid, l.baseAddress, UInt(l.count), r.baseAddress, UInt(r.count))
                    }
                }
                if n <= 0 {
                    throw CheckpointError.errno("process_vm_writev at \(batch[first].address.hex) in pid \(pid)")
                }
                var left = n
                while first < batch.count && left >= local[first].iov_len { left -= local[first].iov_len; first += 1 }
                if left > 0 {
                    local[first].iov_base = local[first].iov_base! + left; local[first].iov_len -= left
                    remote[first].iov_base = remote[first].iov_base! + left; remote[first].iov_len -= left
                }
            }
            index += batch.count
        }
    }
}
