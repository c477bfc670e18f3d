import Foundation
import LinuxKernel
import Images

/// Which private areas a restored process shares copy-on-write with its parent, decided
/// from the images as CRIU's prepare_cow_vmas does: the same start and end, both private,
/// the same anonymous and grows-down flags, the same file, and the same executable.
/// Such areas are mapped and filled in the parent before its children are forked, so the
/// children inherit them and only write the pages whose contents differ.
/// The restore, the lazy-pages daemon and dump --lazy-pages all make the plan with this
/// one rule, the dump from the entries it is writing: which areas are lazy depends on it.
final class MemoryInheritance {
    /// What the plan reads of one process: its pstree and mm entries, whether read from
    /// the images or about to be written to them. A zombie may be left out (it shares nothing).
    struct Task {
        let pid: Int32
        let ppid: Int32
        let isZombie: Bool
        let exeFileID: UInt32
        let vmas: [VmaEntry]
    }

    /// Areas each process takes from its parent by fork.
    private var fromParent: [Int32: [VmaEntry]] = [:]
    /// Areas each process maps before its children are forked: taken from its parent or
    /// passed on to a child.
    private var early: [Int32: [VmaEntry]] = [:]
    private var parents: [Int32: Int32] = [:]
    /// The images the plan was made from (a restore's, the daemon's), for `parent(of:)`.
    private var processes: [Int32: CheckpointImages.Process] = [:]
    private(set) var pagesCompared: UInt64 = 0
    private(set) var pagesSkippedCow: UInt64 = 0

    convenience init(_ images: CheckpointImages) {
        self.init(images.processes.map {
            Task(pid: $0.pid, ppid: Int32($0.entry.ppid), isZombie: $0.isZombie, exeFileID: $0.mm.exeFileID, vmas: $0.mm.vmas)
        })
        processes = Dictionary(images.processes.map { ($0.pid, $0) }, uniquingKeysWith: { a, _ in a })
    }

    init(_ tasks: [Task]) {
        let byPid = Dictionary(tasks.map { ($0.pid, $0) }, uniquingKeysWith: { a, _ in a })
        var passedOn: [Int32: Set<UInt64>] = [:]
        for p in tasks where !p.isZombie {
            guard let parent = byPid[p.ppid], !parent.isZombie, parent.exeFileID == p.exeFileID else { continue }
            let theirs = Dictionary(parent.vmas.filter(Self.isPrivate).map { ($0.start, $0) }, uniquingKeysWith: { a, _ in a })
            let shared = p.vmas.filter { vma in
                guard Self.isPrivate(vma), let q = theirs[vma.start], q.end == vma.end else { return false }
                if (q.flags ^ vma.flags) & UInt32(MAP_GROWSDOWN | MAP_ANONYMOUS) != 0 { return false }
                return vma.flags & UInt32(MAP_ANONYMOUS) != 0 || vma.shmid == q.shmid
            }
            guard !shared.isEmpty else { continue }
            parents[p.pid] = parent.pid
            fromParent[p.pid] = shared
            passedOn[parent.pid, default: []].formUnion(shared.map(\.start))
        }
        for p in tasks where !p.isZombie {
            let starts = Set((fromParent[p.pid] ?? []).map(\.start)).union(passedOn[p.pid] ?? [])
            early[p.pid] = p.vmas.filter { starts.contains($0.start) }
        }
    }

    /// Private memory a fork copies: anonymous or file-backed, not vdso/vvar/vsyscall,
    /// hugetlb or an AIO ring.
    static func isPrivate(_ vma: VmaEntry) -> Bool {
        vma.status & (VmaStatus.anonPrivate | VmaStatus.filePrivate) != 0
            && vma.status & (VmaStatus.vdso | VmaStatus.vvar | VmaStatus.vsyscall | VmaStatus.aioRing) == 0
            && vma.flags & UInt32(MAP_HUGETLB) == 0
    }

    func inherited(_ pid: Int32) -> [VmaEntry] { fromParent[pid] ?? [] }
    func premapped(_ pid: Int32) -> [VmaEntry] { early[pid] ?? [] }
    func parent(of pid: Int32) -> CheckpointImages.Process? { parents[pid].flatMap { processes[$0] } }

    func counted(compared: Int, same: Int) {
        pagesCompared += UInt64(compared)
        pagesSkippedCow += UInt64(same)
    }
}

/// The saved pages of one process: its pagemap runs and where each lies in the mapped
/// pages image, so pages can be handed to process_vm_writev without a copy.
struct SavedPages {
    struct Run { let start: UInt64; let end: UInt64; let data: UnsafeRawPointer }
    let runs: [Run]
    static let page = 4096

    init(_ pagemap: [PagemapEntry], base: UnsafeRawPointer?) {
        var offset = 0
        var runs: [Run] = []
        if let base {
            for e in pagemap {
                let len = Int(e.nrPages) * Self.page
                runs.append(Run(start: e.vaddr, end: e.vaddr + UInt64(len), data: base + offset))
                offset += len
            }
        }
        self.runs = runs.sorted { $0.start < $1.start }
    }

    /// The index of the first run that ends after `addr`.
    private func firstRun(endingAfter addr: UInt64) -> Int {
        var lo = 0, hi = runs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if runs[mid].end <= addr { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The runs overlapping [start, end).
    private func runs(from start: UInt64, to end: UInt64) -> ArraySlice<Run> {
        let first = firstRun(endingAfter: start)
        var last = first
        while last < runs.count && runs[last].start < end { last += 1 }
        return runs[first..<last]
    }

    /// The saved page at `addr`, nil when the pagemap has none.
    func page(at addr: UInt64) -> UnsafeRawPointer? {
        let i = firstRun(endingAfter: addr)
        guard i < runs.count, runs[i].start <= addr else { return nil }
        return runs[i].data + Int(addr - runs[i].start)
    }

    /// Saved pages within `ranges` (start, end), as pieces to write.
    func pieces(within ranges: [(UInt64, UInt64)]) -> [PagePiece] {
        var out: [PagePiece] = []
        for (start, end) in ranges {
            for r in runs(from: start, to: end) {
                let s = max(r.start, start), e = min(r.end, end)
                out.append(PagePiece(address: s, data: r.data + Int(s - r.start), length: Int(e - s)))
            }
        }
        return out
    }

    /// What a child must change in an area it inherited from a parent whose saved pages
    /// are `parent`: the pages that differ (or that the parent has none of) to write, and
    /// the runs the parent has but the child has not, to drop (they read as zero or as
    /// the file again). Also how many pages were compared and found the same.
    func changes(from parent: SavedPages, in area: (UInt64, UInt64)) -> (write: [PagePiece], drop: [(UInt64, UInt64)], compared: Int, same: Int) {
        var write: [PagePiece] = []
        var compared = 0, same = 0
        for piece in pieces(within: [area]) {
            var addr = piece.address
            while addr < piece.address + UInt64(piece.length) {
                let mine = piece.data + Int(addr - piece.address)
                if let theirs = parent.page(at: addr) {
                    compared += 1
                    if memcmp(mine, theirs, Self.page) == 0 { same += 1; addr += UInt64(Self.page); continue }
                }
                if let last = write.last, last.address + UInt64(last.length) == addr, last.data + last.length == mine {
                    write[write.count - 1].length += Self.page
                } else {
                    write.append(PagePiece(address: addr, data: mine, length: Self.page))
                }
                addr += UInt64(Self.page)
            }
        }
        var drop: [(UInt64, UInt64)] = []
        for theirs in parent.pieces(within: [area]) {
            var cursor = theirs.address
            let end = theirs.address + UInt64(theirs.length)
            for r in runs(from: cursor, to: end) {
                if r.start > cursor { drop.append((cursor, r.start)) }
                cursor = max(cursor, r.end)
            }
            if cursor < end { drop.append((cursor, end)) }
        }
        return (write, drop, compared, same)
    }
}
