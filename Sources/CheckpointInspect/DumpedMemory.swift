import LinuxKernel
import Foundation
import Images

/// The private memory of one dumped process, as pagemap-PID.img lays it out over
/// pages-N.img: each entry covers nr_pages pages from vaddr; entries flagged present
/// have their pages concatenated, in order, in the pages image. Pages in a parent
/// image or served lazily are not here. Reads only the pages asked for.
struct DumpedMemory {
    static let pageSize: UInt64 = 4096

    private struct Run { let start: UInt64; let end: UInt64; let fileOffset: UInt64 }
    private let runs: [Run]
    private let pagesPath: String

    init(images: ImageDirectory, pid: UInt32) throws {
        var reader = try images.reader(.pagemap(pid))
        var runs: [Run] = []
        do {
            let head = try reader.one(PagemapHead.self)
            pagesPath = images.file(.pages(head.pagesID))
            var offset: UInt64 = 0
            while let e = try reader.next(PagemapEntry.self) {
                let pages = e.hasNrPages ? e.nrPages : UInt64(e.compatNrPages)
                // Images from before the flags field mark only in_parent.
                let flags = e.hasFlags ? e.flags : (e.inParent ? PageFlags.parent : PageFlags.present)
                guard flags & PageFlags.present != 0 else { continue }
                runs.append(Run(start: e.vaddr, end: e.vaddr + pages * Self.pageSize, fileOffset: offset))
                offset += pages * Self.pageSize
            }
        } catch let e as ImageError { throw e.checkpointError }
        self.runs = runs
    }

    /// The bytes of [start, end), or nil when any page of it is not in this image
    /// (never touched, in a parent image, or pages-N.img not extracted).
    func read(_ start: UInt64, _ end: UInt64) throws -> Data? {
        guard end > start else { return Data() }
        guard let handle = FileHandle(forReadingAtPath: pagesPath) else { return nil }
        defer { try? handle.close() }
        var out = Data()
        var address = start
        while address < end {
            guard let run = runs.first(where: { $0.start <= address && address < $0.end }) else { return nil }
            let stop = min(end, run.end)
            do {
                try handle.seek(toOffset: run.fileOffset + (address - run.start))
                let chunk = try handle.read(upToCount: Int(stop - address)) ?? Data()
                guard chunk.count == Int(stop - address) else {
                    throw CheckpointError(.image, "image \(pagesPath): shorter than its pagemap announces")
                }
                out.append(chunk)
            } catch let e as CheckpointError { throw e } catch {
                throw CheckpointError(.image, "image \(pagesPath): \(error.localizedDescription)", cause: error)
            }
            address = stop
        }
        return out
    }

    /// Larger argv or environment areas than this are taken as damage, not read.
    static let stringsLimit: UInt64 = 8 << 20

    /// The NUL-separated strings of [start, end): argv or the environment.
    func strings(_ start: UInt64, _ end: UInt64) throws -> [String]? {
        guard end >= start, end - start <= Self.stringsLimit, let bytes = try read(start, end) else { return nil }
        var parts = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if parts.last == "" { parts.removeLast() }
        return parts
    }
}
