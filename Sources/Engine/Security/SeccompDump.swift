import Foundation
import LinuxKernel
import Images

/// Seccomp filters of every dumped thread, as CRIU keeps them: one list in seccomp.img in
/// which each filter names the one installed before it (`prev`), and each thread names its
/// newest filter (thread_core.seccomp_filter). Threads that share a chain share entries.
final class SeccompDump {
    private(set) var filters: [SeccompFilter] = []

    /// Adds the filter chain of `tid` and returns the index of its newest filter.
    func add(tid: Int32) throws -> UInt32 {
        let ptrace = Ptrace(tid)
        // Oldest first: PTRACE_SECCOMP_GET_FILTER counts from the first filter installed.
        // (Read newest first, a thread with two filters came back with them swapped, so
        // the later one no longer won a tie of actions and no longer shared the first.)
        var chain: [([UInt8], UInt64)] = []
        while let program = try ptrace.seccompFilter(chain.count) {
            chain.append((program, try ptrace.seccompFlags(chain.count)))
        }
        guard !chain.isEmpty else { throw CheckpointError(.invalidState, "tid \(tid) is in seccomp filter mode but shows no filter") }
        var prev: UInt32? = nil
        for (program, flags) in chain {
            let data = Data(program)
            if let i = filters.firstIndex(where: { $0.filter == data && $0.flags == UInt32(flags) && ($0.hasPrev ? $0.prev : nil) == prev }) {
                prev = UInt32(i)
            } else {
                var f = SeccompFilter()
                f.filter = data
                f.flags = UInt32(flags)
                if let prev { f.prev = prev }
                filters.append(f)
                prev = UInt32(filters.count - 1)
            }
        }
        return prev!
    }

    func write(to images: ImageDirectory) throws {
        guard !filters.isEmpty else { return }
        var entry = SeccompEntry()
        entry.seccompFilters = filters
        try images.write(.seccomp, [entry])
    }
}
