import Foundation
import LinuxKernel
import Images

/// A pre-dump freezes the tree only to choose the pages and protect them again; their
/// bytes are copied once it runs (a page written meanwhile is caught by the next round).
extension MemoryDump {
    /// Sends the pages planned while the tree was frozen.
    func sendPlanned() throws {
        let work = planned ?? []
        planned = []
        for p in work { try writePages(p.pagemap, runs: p.runs, copy: p.copy) }
    }

    /// `copy` for a process that runs again: a range it made unreadable since is read the
    /// way a debugger reads it, and one it unmapped reads as zeros. No later dump takes
    /// those from these images: an area unmapped or mapped anew is no longer tracked.
    static func fromRunning(_ copy: @escaping PageCopy, memory: RemoteMemory) -> PageCopy {
        { pieces, base in
            do { try copy(pieces, base) } catch {
                let page = Int(pageSize)
                var at = 0
                for (addr, len) in pieces {
                    for offset in stride(from: 0, to: len, by: page) {
                        let to = base + at + offset, from = addr + UInt64(offset)
                        if (try? memory.copyOut([(from, page)], into: to)) != nil { continue }
                        if let bytes = try? memory.read(from, count: page) {
                            bytes.withUnsafeBytes { to.copyMemory(from: $0.baseAddress!, byteCount: page) }
                        } else {
                            to.initializeMemory(as: UInt8.self, repeating: 0, count: page)
                        }
                    }
                    at += len
                }
            }
        }
    }
}
