import Foundation
import LinuxKernel
import Images

/// Seccomp filters of a restored process. Filters that every thread had are installed in
/// the main thread before the other threads exist, so that the threads inherit them as
/// shared filters, as they were: a filter installed later with SECCOMP_FILTER_FLAG_TSYNC
/// needs every thread's filter to be an ancestor of the caller's, and per-thread copies
/// made it fail. A thread's own further filters are installed by itself, last.
extension RestoredProcess {
    /// Each thread's filter chain (indexes, oldest first); strict mode and no filter: nil.
    func seccompChains(_ filters: [SeccompFilter]) throws -> [Int32: [Int]] {
        var chains: [Int32: [Int]] = [:]
        for vtid in image.entry.threads.map({ Int32($0) }) {
            guard let tcore = effectiveSeccomp(vtid, filters), tcore.seccompMode == .filter else { continue }
            chains[vtid] = try seccompChain(filters, first: tcore.seccompFilter, vtid: vtid)
        }
        return chains
    }

    /// The filters at the start of every thread's chain, compared by program and flags:
    /// CRIU writes a chain per thread even where the threads share it.
    func sharedSeccompPrefix(_ filters: [SeccompFilter]) throws -> [Int] {
        let chains = try seccompChains(filters)
        let all = image.entry.threads.map { chains[Int32($0)] ?? [] }
        guard var prefix = all.first else { return [] }
        func same(_ a: Int, _ b: Int) -> Bool { filters[a].filter == filters[b].filter && filters[a].flags == filters[b].flags }
        for chain in all.dropFirst() {
            prefix = Array(zip(prefix, chain).prefix { same($0, $1) }.map(\.0))
        }
        return prefix
    }

    /// Installs the shared filters in the main thread, which from now on is traced with
    /// seccomp suspended (threads cloned from it inherit that), so that our own injected
    /// syscalls still pass.
    func installSharedSeccomp(_ filters: [SeccompFilter]) throws {
        let prefix = try sharedSeccompPrefix(filters)
        guard !prefix.isEmpty else { return }
        try Ptrace(hostPid).setOptions(Self.tracing | Ptrace.optSuspendSeccomp)
        for f in prefix.map({ filters[$0] }) { try installFilter(f, on: hostPid) }
    }

    /// The rest of the thread's filters (or strict mode). Last of all injected syscalls of
    /// the thread; seccomp stays suspended for it until we detach.
    func restoreSeccomp(_ thread: (virtual: Int32, host: Int32), filters: [SeccompFilter]) throws {
        guard let tcore = effectiveSeccomp(thread.virtual, filters), tcore.seccompMode != .disabled else { return }
        try Ptrace(thread.host).setOptions(Self.tracing | Ptrace.optSuspendSeccomp)
        if tcore.seccompMode == .strict {
            try call("prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)", on: thread.host, SyscallNumber.prctl, 22, 1)
            return
        }
        let shared = try sharedSeccompPrefix(filters).count
        try installSeccomp(filters, first: tcore.seccompFilter, vtid: thread.virtual, on: thread.host, skipping: shared)
    }

    /// The thread's seccomp state. CRIU saves threads that share the leader's filters with
    /// none of their own and marks the leader's TSYNC: they have the leader's chain.
    private func effectiveSeccomp(_ vtid: Int32, _ filters: [SeccompFilter]) -> ThreadCoreEntry? {
        guard let tcore = image.cores[vtid]?.threadCore else { return nil }
        let leader = image.main.threadCore
        if tcore.seccompMode == .disabled, leader.seccompMode == .filter, Int(leader.seccompFilter) < filters.count,
           filters[Int(leader.seccompFilter)].flags & SeccompFlag.tsync != 0 {
            return leader
        }
        return tcore
    }
}
