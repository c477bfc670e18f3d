import Foundation
import LinuxKernel
import Images

extension PagesImage {
    /// The saved pages of process `pid` (`pagemap`, its pages in pages-`pagesID`): a run
    /// flagged in-parent is looked up in the parent images, and further up the chain, so
    /// every restore path reads one page source whatever image holds the bytes.
    func saved(pid: Int32, pagemap: [PagemapEntry], pagesID: UInt32) throws -> SavedPages {
        guard pagemap.contains(where: { $0.flags & PageFlags.parent != 0 }) else {
            return SavedPages(pagemap, base: try base(pagesID))
        }
        let own = try base(pagesID)
        let theirs = try parentPages(pid: pid)
        var runs: [SavedPages.Run] = []
        var offset = 0
        for e in pagemap {
            let len = Int(e.nrPages) * SavedPages.page, end = e.vaddr + UInt64(len)
            guard e.flags & PageFlags.parent != 0 else {
                guard let own else { throw CheckpointError(.image, "\(dir.file(.pages(pagesID))) is empty") }
                runs.append(.init(start: e.vaddr, end: end, data: own + offset))
                offset += len
                continue
            }
            var covered = e.vaddr
            for piece in theirs.pieces(within: [(e.vaddr, end)]) where piece.address == covered {
                runs.append(.init(start: piece.address, end: piece.address + UInt64(piece.length), data: piece.data))
                covered += UInt64(piece.length)
            }
            guard covered == end else {
                throw CheckpointError(.image, "\(dir.file(.pagemap(pid))): pages \(e.vaddr.hex)-\(end.hex) are in the parent images, which have none at \(covered.hex)")
            }
        }
        return SavedPages(runs: runs)
    }

    /// The saved pages of `pid` in the parent images, themselves resolved through their parent.
    private func parentPages(pid: Int32) throws -> SavedPages {
        guard let parent else {
            throw CheckpointError(.image, "\(dir.file(.pagemap(pid))): pages are in a parent image, and \(dir.path) has no parent link")
        }
        guard parent.dir.exists(.pagemap(pid)) else {
            throw CheckpointError(.image, "\(dir.file(.pagemap(pid))): pages are in the parent images, which have no \(ImageName.pagemap(pid))")
        }
        do {
            var r = try parent.dir.reader(.pagemap(pid))
            let id = try r.one(PagemapHead.self).pagesID
            let runs = try CheckpointImages.pagemapRuns(try r.all(PagemapEntry.self), image: parent.dir.file(.pagemap(pid)), parentAllowed: true)
            try CheckpointImages.checkRuns(runs, image: parent.dir.file(.pagemap(pid)))
            let bytes = runs.reduce(0) { $0 + ($1.flags & PageFlags.parent != 0 ? 0 : $1.nrPages) } * UInt64(SavedPages.page)
            var st = stat()
            if bytes > 0 && (stat(parent.dir.file(.pages(id)), &st) != 0 || UInt64(st.st_size) != bytes) {
                throw CheckpointError(.image, "\(parent.dir.file(.pages(id))): missing or not the \(bytes) bytes its pagemap announces")
            }
            return try parent.saved(pid: pid, pagemap: runs, pagesID: id)
        } catch let e as ImageError { throw e.checkpointError }
    }
}

extension SavedPages {
    init(runs: [Run]) {
        self.runs = runs.sorted { $0.start < $1.start }
    }
}
