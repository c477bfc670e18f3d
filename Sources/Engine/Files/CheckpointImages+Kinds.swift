import Foundation
import LinuxKernel
import Images

extension CheckpointImages {
    /// memfd.img and the contents of each memfd (pagemap-shmem-SHMID.img), unless a
    /// shared mapping of the same object brought them in already.
    mutating func readMemfds() throws {
        guard dir.exists(.memfd) else { return }
        for m in try dir.read(.memfd, as: MemfdInodeEntry.self) {
            memfds[m.inodeID] = m
            let shmid = UInt64(m.shmid)
            guard shmem[shmid] == nil, dir.exists(.pagemapShmem(shmid)) else { continue }
            var r = try dir.reader(.pagemapShmem(shmid))
            do {
                let head = try r.one(PagemapHead.self)
                shmem[shmid] = (head.pagesID, try Self.pagemapRuns(try r.all(PagemapEntry.self), image: dir.file(.pagemapShmem(shmid))))
            } catch let e as ImageError { throw e.checkpointError }
        }
    }
}
