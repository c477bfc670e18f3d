import Foundation
import LinuxKernel
import Images

/// One process's pages while dump --lazy-pages waits for the rest of the tree: the runs
/// that are written in any case, and those in areas `LazyAreas.isLazy` accepts, which stay
/// lazy only where the restore does not fill them before a fork.
struct WaitingPages {
    let vpid: Int32
    let runs: [PageRun]
    let lazyCandidates: [PageRun]
    let memory: RemoteMemory
    let copy: PageCopy
}

extension MemoryDump {
    /// dump --lazy-pages, once every process's areas are known: the restore fills areas a
    /// parent shares copy-on-write with a child before the fork, so their pages go to the
    /// pages images; the rest of the lazy areas are held for the lazy page server. The
    /// plan is the restore's and the daemon's (MemoryInheritance, LazyAreas.areas), made
    /// from the entries written to the images, so all three agree on every area.
    func sendLazyTree() throws {
        guard let lazyPages else { return }
        let plan = MemoryInheritance(lazyPages.tree)
        let vmas = Dictionary(lazyPages.tree.map { ($0.pid, $0.vmas) }, uniquingKeysWith: { a, _ in a })
        for w in lazyPages.takeWaiting() {
            guard let areas = vmas[w.vpid] else {
                throw CheckpointError(.invalidState, "dump --lazy-pages: pid \(w.vpid)'s areas were not described")
            }
            let lazyAreas = AddressRanges(LazyAreas.areas(pid: w.vpid, vmas: areas, plan: plan).map { ($0.start, $0.end) })
            // A candidate run lies in one area: where it starts says which.
            let lazy = w.lazyCandidates.filter { lazyAreas.contains($0.address) }
            let eager = w.lazyCandidates.filter { !lazyAreas.contains($0.address) }
            try lazyPages.hold(vpid: w.vpid, runs: lazy, from: w.memory)
            let flagged = lazy.map { PageRun(address: $0.address, length: $0.length, lazy: true) }
            try writePages(.pagemap(w.vpid), runs: w.runs + eager + flagged, copy: w.copy)
        }
    }
}
