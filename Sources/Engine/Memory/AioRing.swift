import Foundation
import LinuxKernel
import Images

/// io_setup contexts, as CRIU carries them: the ring's area is saved whole (VMA_AREA_AIORING)
/// with an aio_ring_entry in mm (its address, which is the context id, its length and the
/// request count io_setup was asked for). A restore makes a new context of the same size,
/// moves its tail and head to where they were, copies the completed events in and moves
/// the ring to the dumped address, which makes that address the context id again.
/// Requests still in flight at the dump are not seen (CRIU does not wait for them either).
typealias AioRingEntry = aio_ring_entry

enum AioRing {
    static let headerSize = 32, eventSize = 32
    static let setupSyscall = 206, submitSyscall = 209, magic: UInt32 = 0xa10a10a1

    /// An area that is an io_setup ring ("/[aio] (deleted)", an anonymous inode).
    static func isRing(_ path: String) -> Bool { path.hasPrefix("/[aio]") }

    /// mm.aios for the rings among `vmas`.
    static func entries(_ vmas: [VmaEntry]) -> [AioRingEntry] {
        vmas.filter { $0.status & VmaStatus.aioRing != 0 }.map { vma in
            var e = AioRingEntry()
            e.id = vma.start
            e.ringLen = UInt32(vma.end - vma.start)
            e.nrReq = requests(forLength: Int(e.ringLen))
            return e
        }
    }

    /// The request count whose ring has this length: the kernel doubles the count asked
    /// for, adds 2 and rounds the ring up to whole pages (CRIU's aio_estimate_nr_reqs).
    static func requests(forLength length: Int) -> UInt32 {
        let events = (length - headerSize) / eventSize
        return UInt32(max(events - 2, 0) / 2)
    }
}

extension RestoredProcess {
    /// Every dumped ring made again at its address, with its head, tail and events.
    func restoreAioRings(_ saved: SavedPages) throws {
        for ring in image.mm.aios {
            let len = Int(ring.ringLen)
            guard let old = saved.page(at: ring.id) else {
                throw CheckpointError(.image, "pid \(pid): AIO ring \(ring.id.hex) has no saved header")
            }
            func field(_ i: Int) -> UInt32 { old.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self) }
            let (nr, head, tail) = (field(1), field(2), field(3))
            let ctxAddr = try put(value: UInt64(0), at: 0)
            try call("io_setup(\(ring.nrReq))", AioRing.setupSyscall, UInt64(ring.nrReq), ctxAddr)
            let ctx = try readValue(ctxAddr, as: UInt64.self)
            let newNr = try readValue(ctx + 4, as: UInt32.self)
            guard field(4) == AioRing.magic, newNr == nr, head < nr, tail < nr else {
                throw CheckpointError(.unsupported, "pid \(pid): AIO ring \(ring.id.hex) of \(nr) events (head \(head), tail \(tail)) cannot be made again: this kernel gives \(newNr)")
            }
            if head != 0 || tail != 0 { try advance(ctx: ctx, nr: nr, head: head, tail: tail) }
            // The completed events, behind the header the new ring keeps.
            let events = saved.pieces(within: [(ring.id, ring.id + UInt64(len))]).compactMap { p -> PagePiece? in
                let skip = p.address < ring.id + UInt64(AioRing.headerSize) ? Int(ring.id + UInt64(AioRing.headerSize) - p.address) : 0
                guard skip < p.length else { return nil }
                return PagePiece(address: ctx + (p.address - ring.id) + UInt64(skip), data: p.data + skip, length: p.length - skip)
            }
            try memory.scatterIn(events)
            try call("mremap AIO ring to \(ring.id.hex)", SyscallNumber.mremap, ctx, UInt64(len), UInt64(len), UInt64(MremapFlag.mayMoveFixed), ring.id)
        }
    }

    /// Moves a fresh ring's tail to `tail` and its head to `head` with writes of one byte to
    /// /dev/null, which complete at once (a full turn first when the tail is behind the
    /// head, so the kernel's count of completed events comes out right), as CRIU does.
    private func advance(ctx: UInt64, nr: UInt32, head: UInt32, tail: UInt32) throws {
        let path = try put(Array("/dev/null".utf8) + [0], at: 64)
        let fd = try call("open /dev/null for AIO", SyscallNumber.openat, UInt64(bitPattern: Int64(AT_FDCWD)), path, UInt64(O_WRONLY), 0)
        let count = Int(tail < head ? nr + tail : tail)
        let batch = min(count, Int(nr) - 1, 4096)
        // struct iocb: fildes at 20, opcode at 16 (IOCB_CMD_PWRITE = 1), buf at 24, nbytes at 32.
        var iocb = [UInt8](repeating: 0, count: 64)
        iocb.replaceSubrange(16..<18, with: bytes(UInt16(1)))
        iocb.replaceSubrange(20..<24, with: bytes(UInt32(fd)))
        iocb.replaceSubrange(24..<32, with: bytes(data + 64))
        iocb.replaceSubrange(32..<40, with: bytes(UInt64(1)))
        let iocbAddr = try put(iocb, at: 128)
        let pointers = try put((0..<batch).flatMap { _ in bytes(iocbAddr) }, at: 256)
        var done = 0
        while done < count {
            let n = try call("io_submit", AioRing.submitSyscall, ctx, UInt64(min(count - done, batch)), pointers)
            if n == 0 { throw CheckpointError(.kernel, "pid \(pid): io_submit took no request while moving an AIO ring's tail") }
            done += Int(n)
            // Setting head is what io_getevents would do, and frees room for the next batch.
            try write(ctx + 8, bytes(UInt32(done < Int(head) ? done : Int(head))))
        }
        try call("close", SyscallNumber.close, fd)
    }
}
