import Foundation
import LinuxKernel
import Images

/// Seccomp filters of every dumped thread in seccomp.img as CRIU 4.2 writes and reads
/// them: a thread names its oldest filter (thread_core.seccomp_filter) and each filter names
/// the next newer one in `prev`, so that following `prev` gives the order to install them.
/// (The field's name says the opposite; CRIU's dump reads PTRACE_SECCOMP_GET_FILTER as
/// newest first and its restore installs in `prev` order, which together is right.)
/// Threads with the same chain share entries.
final class SeccompDump {
    private(set) var filters: [SeccompFilter] = []

    /// Adds the filter chain of `tid` and returns the index of its oldest filter.
    func add(tid: Int32) throws -> UInt32 {
        let ptrace = Ptrace(tid)
        // Oldest first: PTRACE_SECCOMP_GET_FILTER counts from the first filter installed.
        var chain: [([UInt8], UInt64)] = []
        while let program = try ptrace.seccompFilter(chain.count) {
            chain.append((program, try ptrace.seccompFlags(chain.count)))
        }
        guard !chain.isEmpty else { throw CheckpointError(.invalidState, "tid \(tid) is in seccomp filter mode but shows no filter") }
        var next: UInt32? = nil
        for (program, flags) in chain.reversed() {
            let data = Data(program)
            if let i = filters.firstIndex(where: { $0.filter == data && $0.flags == UInt32(flags) && ($0.hasPrev ? $0.prev : nil) == next }) {
                next = UInt32(i)
            } else {
                var f = SeccompFilter()
                f.filter = data
                f.flags = UInt32(flags)
                if let next { f.prev = next }
                filters.append(f)
                next = UInt32(filters.count - 1)
            }
        }
        return next!
    }

    func write(to images: ImageDirectory) throws {
        guard !filters.isEmpty else { return }
        var entry = SeccompEntry()
        entry.seccompFilters = filters
        try images.write(.seccomp, [entry])
    }
}
