import Foundation
import LinuxKernel
import Images

/// Where a lazy restore sends each task's userfaultfd: the lazy-pages daemon's socket.
public protocol LazyPagesSink: AnyObject {
    /// Task `pid` (in the images; `hostPid` as the restorer sees it, for the keeper to
    /// kill). `uffd` is the restorer's fd (the caller closes it after the call).
    func send(pid: Int32, hostPid: Int32, uffd: Int32) throws
    /// Every task was sent (or the restore failed): the daemon may copy the rest.
    func finish()
}

/// Which areas a lazy restore leaves to the daemon, decided from the images alone so that
/// the restore and the daemon agree (CRIU's vma_entry_can_be_lazy, narrowed): private
/// anonymous and writable, not locked, not a stack, not hugetlb, not wiped on fork (a
/// child's wiped copy must read zero, not the saved pages). Areas shared copy-on-write
/// with a parent or child are filled before the fork and stay eager.
enum LazyAreas {
    static func isLazy(_ vma: VmaEntry) -> Bool {
        let wipeOnFork: UInt64 = 1 << 18
        return MemoryInheritance.isPrivate(vma) && vma.status & VmaStatus.anonPrivate != 0
            && vma.flags & UInt32(MAP_ANONYMOUS) != 0 && vma.prot & UInt32(PROT_WRITE) != 0
            && vma.flags & UInt32(MAP_LOCKED | MAP_GROWSDOWN | MAP_HUGETLB) == 0
            && vma.status & VmaStatus.stack == 0 && vma.madv & wipeOnFork == 0
    }

    /// The lazy areas of process `pid`, whose areas are `vmas`: the restore, the daemon
    /// (from the images) and dump --lazy-pages (from the entries it writes) all ask here.
    static func areas(pid: Int32, vmas: [VmaEntry], plan: MemoryInheritance) -> [VmaEntry] {
        let early = Set(plan.premapped(pid).map(\.start))
        return vmas.filter { isLazy($0) && !early.contains($0.start) }
    }

    static func areas(_ process: CheckpointImages.Process, plan: MemoryInheritance) -> [VmaEntry] {
        areas(pid: process.pid, vmas: process.mm.vmas, plan: plan)
    }
}

extension RestoredProcess {
    /// Registers `areas` (mapped, not filled) with a userfaultfd made inside this task, so
    /// it belongs to the task's mm, and hands it to `sink`. Last of the memory steps: an
    /// munmap or madvise on a registered area waits until the daemon reads the event.
    /// A task without lazy areas sends one too: the keeper kills every task of the tree
    /// (a parent whose child lost its pages among them) by the pids it was sent.
    func handOverLazyAreas(_ areas: [VmaEntry], to sink: LazyPagesSink) throws {
        let uffd = try call("userfaultfd", SyscallNumber.userfaultfd, UInt64(O_CLOEXEC | O_NONBLOCK))
        defer { _ = try? call("close userfaultfd", SyscallNumber.close, uffd) }
        let api = try put(value: Userfaultfd.Api(api: Userfaultfd.api, features: Userfaultfd.events))
        try call("ioctl(UFFDIO_API)", SyscallNumber.ioctl, uffd, Userfaultfd.apiRequest, api)
        for vma in areas {
            let reg = try put(value: Userfaultfd.Register(start: vma.start, length: vma.end - vma.start, mode: Userfaultfd.registerMissing))
            try call("ioctl(UFFDIO_REGISTER) \(vma.start.hex)-\(vma.end.hex)", SyscallNumber.ioctl, uffd, Userfaultfd.registerRequest, reg)
        }
        let ours = try Syscall.takeFd(pid: hostPid, fd: Int32(truncatingIfNeeded: uffd))
        defer { close(ours) }
        try sink.send(pid: pid, hostPid: hostPid, uffd: ours)
    }
}

extension Restorer {
    /// Pages a dump --lazy-pages left on its page server come only through the lazy-pages
    /// daemon, and only into areas this restore leaves to it: anywhere else they would
    /// read as zero.
    static func checkLazyRuns(_ images: CheckpointImages, lazy: Bool) throws {
        guard let first = images.processes.first(where: { !$0.lazyPagemap.isEmpty }) else { return }
        guard lazy else {
            throw CheckpointError(.invalidArgument, "pid \(first.pid): \(first.lazyPagemap.count) runs of pages are on the dump's lazy page server (dump --lazy-pages): restore with --lazy-pages and lazy-pages --page-server")
        }
        let plan = MemoryInheritance(images)
        for p in images.processes where !p.lazyPagemap.isEmpty {
            let areas = LazyAreas.areas(p, plan: plan)
            for run in p.lazyPagemap where !areas.contains(where: { $0.start <= run.vaddr && run.vaddr + run.nrPages * 4096 <= $0.end }) {
                throw CheckpointError(.unsupported, "pid \(p.pid): lazy pages at \(run.vaddr.hex) lie in an area this restore fills eagerly")
            }
        }
    }
}
