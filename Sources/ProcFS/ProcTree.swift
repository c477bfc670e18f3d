#if canImport(Glibc)
import Glibc
#endif

/// Threads, children and file descriptors of a process as /proc lists them.
public enum ProcTree {
    public static func threads(of pid: Int32) throws -> [Int32] {
        try listNumericEntries(procPath(pid, "task"))
    }

    /// Children of every thread of `pid`. Uses task/TID/children when the kernel has
    /// CONFIG_PROC_CHILDREN; without it (this project's CI kernel) scans every /proc/N/stat.
    public static func children(of pid: Int32) throws -> [Int32] {
        let tids = try threads(of: pid)
        guard kernelListsChildren else {
            return try parents().compactMap { $0.value == pid ? $0.key : nil }.sorted()
        }
        var found = Set<Int32>()
        for tid in tids {
            // a thread that exits meanwhile has no children left to list
            guard let text = try? readProcFile(procPath(pid, tid: tid, "children")) else { continue }
            for word in ProcLines.fields(text[...]) {
                if let child = Int32(word) { found.insert(child) }
            }
        }
        return found.sorted()
    }

    static let kernelListsChildren = access("/proc/thread-self/children", F_OK) == 0

    /// Every process on the system mapped to its parent (stat field 4). Processes that exit
    /// during the scan are left out.
    public static func parents() throws -> [Int32: Int32] {
        var result: [Int32: Int32] = [:]
        for pid in try listNumericEntries("/proc") {
            guard let stat = try? TaskStat.read(pid: pid) else { continue }
            result[pid] = stat.ppid
        }
        return result
    }

    /// `pid` and all its descendants, breadth first, so parents come before children.
    public static func subtree(of pid: Int32) throws -> [Int32] {
        let byParent = Dictionary(grouping: try parents(), by: { $0.value })
            .mapValues { $0.map(\.key).sorted() }
        var order: [Int32] = []
        var queue = [pid]
        var seen: Set<Int32> = []
        while !queue.isEmpty {
            let next = queue.removeFirst()
            guard seen.insert(next).inserted else { continue }
            order.append(next)
            queue.append(contentsOf: byParent[next] ?? [])
        }
        return order
    }

    public static func fds(of pid: Int32) throws -> [Int32] {
        try listNumericEntries(procPath(pid, "fd"))
    }

    public static func link(_ path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        while true {
            let n = readlink(path, &buffer, buffer.count)
            if n < 0 { throw ProcFSError.system(path, errno) }
            if n < buffer.count {
                return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            buffer = [CChar](repeating: 0, count: buffer.count * 2)
        }
    }
}
