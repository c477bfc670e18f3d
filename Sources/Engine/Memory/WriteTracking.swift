import Foundation
import LinuxKernel
import ProcFS

/// Tracks which pages a process writes between two dumps without soft-dirty: a
/// userfaultfd of the process's own mm, in asynchronous write-protect mode (a write
/// faults, the kernel lifts the protection itself and the task never waits), read back
/// and re-protected in one PAGEMAP_SCAN call. Closing the last fd on the userfaultfd
/// unregisters every area, so tracking lasts exactly as long as someone holds it.
public enum WriteTracking {
    // linux/userfaultfd.h (Linux 6.7): the installed headers predate it.
    static let userfaultfd = 323
    static let userModeOnly: UInt64 = 1
    static let uffdioAPI: UInt = 0xC018_AA3F, uffdioRegister: UInt = 0xC020_AA00
    static let uffdAPI: UInt64 = 0xAA, registerModeWP: UInt64 = 1 << 1
    static let featureWPUnpopulated: UInt64 = 1 << 13, featureWPAsync: UInt64 = 1 << 15

    /// A userfaultfd of `task`'s mm, made inside the task (a userfaultfd belongs to the mm
    /// of its creator), taken into ours and closed there, with async write-protect enabled.
    static func create(in task: TaskControl, hostPid: Int32) throws -> Int32 {
        // User-mode only: needs no CAP_SYS_PTRACE in the task; async mode never reports faults anyway.
        let theirs = try task.call("userfaultfd", userfaultfd, UInt64(O_CLOEXEC | O_NONBLOCK) | userModeOnly)
        let fd: Int32
        do { fd = try Syscall.takeFd(pid: hostPid, fd: Int32(theirs)) } catch {
            _ = try? task.call("close userfaultfd", SyscallNumber.close, theirs)
            throw error
        }
        do {
            try task.call("close userfaultfd", SyscallNumber.close, theirs)
            try enableAsyncWP(fd, "UFFDIO_API (async write-protect) for pid \(hostPid)")
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// UFFDIO_API asking for async write-protect that also covers pages not yet populated.
    private static func enableAsyncWP(_ fd: Int32, _ what: @autoclosure () -> String) throws {
        var api: (UInt64, UInt64, UInt64) = (uffdAPI, featureWPAsync | featureWPUnpopulated, 0)
        _ = try withUnsafeMutablePointer(to: &api) { try Syscall.raw(what(), SyscallNumber.ioctl, Int(fd), Int(bitPattern: uffdioAPI), Int(bitPattern: $0)) }
    }

    /// Private areas worth tracking: anonymous or file-backed, not the kernel's special
    /// ones. Shared memory stays fully dumped, and hugetlb memory, as CRIU dumps it (its
    /// restore fills hugetlb areas from the last images only).
    static func trackable(_ area: MemoryArea) -> Bool {
        !area.shared && !area.isSpecial && area.size > 0 && !area.vmFlags.contains("ht") && !HugePages.isAnonymous(area)
    }

    /// Registers every trackable area of `areas` for write-protection; the ranges that took
    /// it. An area the kernel will not register stays untracked (dumped in full).
    static func register(_ fd: Int32, areas: [MemoryArea]) -> [(UInt64, UInt64)] {
        var done: [(UInt64, UInt64)] = []
        for area in areas where trackable(area) {
            var reg: (UInt64, UInt64, UInt64, UInt64) = (area.start, area.size, registerModeWP, 0)
            let r = withUnsafeMutablePointer(to: &reg) { Syscall.result(SyscallNumber.ioctl, Int(fd), Int(bitPattern: uffdioRegister), Int(bitPattern: $0)) }
            if case .success = r { done.append((area.start, area.end)) }
        }
        return done
    }

    /// The pages of `pid` written since the last scan (every page of a newly registered
    /// area counts as written), protected again when `protect` is set.
    static func written(pid: Int32, protect: Bool) throws -> AddressRanges {
        let pagemap = open("/proc/\(pid)/pagemap", O_RDONLY | O_CLOEXEC)
        if pagemap < 0 { throw CheckpointError.errno("open /proc/\(pid)/pagemap") }
        defer { close(pagemap) }
        let regions = try PagemapScan.regions(pagemap: pagemap, pid: pid, from: 0, to: PagemapScan.userTop,
                                              all: .written, report: .written, writeProtect: protect)
        return AddressRanges(regions.map { ($0.start, $0.end) })
    }
}

extension WriteTracking {
    /// Whether this kernel tracks writes this way (userfaultfd with async write-protect and
    /// PAGEMAP_SCAN, Linux 6.7), tried on a userfaultfd of our own.
    public static var supported: Bool {
        guard case .success(let fd) = Syscall.result(userfaultfd, Int(O_CLOEXEC) | Int(userModeOnly)) else { return false }
        defer { close(Int32(fd)) }
        guard (try? enableAsyncWP(Int32(fd), "UFFDIO_API")) != nil else { return false }
        return (try? written(pid: getpid(), protect: false)) != nil
    }
}
