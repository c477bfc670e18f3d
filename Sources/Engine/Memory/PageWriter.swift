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
    /// Beyond a few MiB the pieces are split by bytes over every core: most of the time
    /// is the kernel allocating and zeroing the task's pages (64 MiB: ~40 ms on one core),
    /// and faults in different page tables do not wait for each other.
    func scatterIn(_ pieces: [PagePiece]) throws {
        let total = pieces.reduce(0) { $0 + $1.length }
        // (activeProcessorCount reads sysfs each time: not for the small writes of a tree.)
        guard total >= 8 << 20 else { return try write(pieces) }
        let workers = min(ProcessInfo.processInfo.activeProcessorCount, total / (4 << 20))
        guard workers > 1 else { return try write(pieces) }
        let shares = Self.split(pieces, into: workers, total: total)
        let failures = FirstFailure()
        DispatchQueue.concurrentPerform(iterations: shares.count) { i in
            do { try write(shares[i]) } catch { failures.record(error) }
        }
        if let first = failures.first { throw first }
    }

    /// `pieces` cut into `count` runs of about the same number of bytes, in order.
    static func split(_ pieces: [PagePiece], into count: Int, total: Int) -> [[PagePiece]] {
        let share = (total / count + 4095) & ~4095
        var shares: [[PagePiece]] = [[]]
        var room = share
        for var piece in pieces {
            while piece.length > 0 {
                if room == 0 && shares.count < count { shares.append([]); room = share }
                let n = shares.count == count ? piece.length : min(piece.length, room)
                shares[shares.count - 1].append(PagePiece(address: piece.address, data: piece.data, length: n))
                piece.address += UInt64(n); piece.data += n; piece.length -= n
                room = max(0, room - n)
            }
        }
        return shares
    }

    private func write(_ pieces: [PagePiece]) throws {
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

/// The first error of work done on several threads.
final class FirstFailure: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error] = []
    func record(_ e: Error) { lock.lock(); errors.append(e); lock.unlock() }
    var first: Error? { lock.lock(); defer { lock.unlock() }; return errors.first }
}
