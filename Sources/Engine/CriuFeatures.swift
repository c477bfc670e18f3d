import Foundation
import LinuxKernel

/// The features `criu check --feature NAME` knows (criu/cr-check.c's feature_list), answered
/// for this engine on this kernel: supported only when the kernel has what the feature
/// needs *and* the engine checkpoints and restores what it is about. A feature CRIU has
/// and the engine does not carry yet is "not supported", with the reason.
public enum CriuFeatures {
    public struct Answer: Equatable {
        public let supported: Bool
        public let reason: String
    }

    public static let names: [String] = [
        "mnt_id", "mem_dirty_track", "aio_remap", "timerfd", "tun", "tun_ns", "userns", "fdinfo_lock",
        "seccomp_suspend", "seccomp_filters", "loginuid", "cgroupns", "autofs", "tcp_half_closed",
        "compat_cr", "uffd", "uffd-noncoop", "can_map_vdso", "sk_ns", "sk_unix_file", "net_diag_raw",
        "nsid", "link_nsid", "kcmp_epoll", "timens", "external_net_ns", "clone3_set_tid", "newifindex",
        "nftables", "has_ipt_legacy", "pidfd_store", "ns_pid", "apparmor_stacking",
        "network_lock_nftables", "sockopt_buf_lock", "memfd_hugetlb", "move_mount_set_group", "openat2",
        "get_rseq_conf", "ipv6_freebind", "pagemap_scan", "timer_cr_ids", "overlayfs_maps", "breakpoints",
        "pagemap_scan_guard_pages",
    ]

    /// nil for a name CRIU does not know either.
    public static func check(_ name: String) -> Answer? {
        guard names.contains(name) else { return nil }
        func yes(_ why: String) -> Answer { Answer(supported: true, reason: why) }
        func no(_ why: String) -> Answer { Answer(supported: false, reason: why) }
        func kernel(_ present: Bool, _ what: String) -> Answer {
            present ? yes(what) : no("the kernel lacks it: \(what)")
        }
        let exists = { (path: String) in access(path, F_OK) == 0 }
        switch name {
        case "mnt_id": return kernel(fdinfoHas("mnt_id:"), "mnt_id in /proc/PID/fdinfo")
        case "fdinfo_lock": return yes("file locks from the lock: lines of /proc/PID/fdinfo")
        case "timerfd": return yes("timerfd clock, interval, time left and ticks")
        case "seccomp_filters", "seccomp_suspend": return yes("seccomp filters through PTRACE_SECCOMP_GET_FILTER")
        case "cgroupns": return kernel(exists("/proc/self/ns/cgroup"), "cgroup namespaces")
        case "can_map_vdso": return yes("the vdso and vvar areas are moved to their dumped addresses")
        case "sk_ns": return yes("sockets in the tree's network namespace")
        case "kcmp_epoll": return yes("epoll targets compared with kcmp")
        case "timens": return kernel(exists("/proc/self/ns/time"), "time namespaces")
        case "external_net_ns": return yes("a network namespace handed over as external (net[INODE]:KEY)")
        case "clone3_set_tid": return yes("clone3 with set_tid (Linux 5.5)")
        case "ns_pid": return kernel(statusHas("NSpid:"), "NSpid in /proc/PID/status")
        case "sockopt_buf_lock": return yes("SO_BUF_LOCK of sockets")
        case "openat2": return yes("openat2 with RESOLVE_BENEATH")
        case "get_rseq_conf": return yes("PTRACE_GET_RSEQ_CONFIGURATION (Linux 5.13)")
        case "timer_cr_ids": return yes("POSIX timers keep their ids (PR_TIMER_CREATE_RESTORE_IDS)")
        case "mem_dirty_track", "pagemap_scan":
            return kernel(WriteTracking.supported, "memory tracking with userfaultfd async write-protect and PAGEMAP_SCAN (Linux 6.7)")
        case "pidfd_store", "pagemap_scan_guard_pages":
            return no("not implemented")
        case "uffd", "uffd-noncoop": return kernel(exists("/proc/sys/vm/unprivileged_userfaultfd"), "lazy restore (userfaultfd with fork, mremap, remove and unmap events)")
        case "userns": return yes("a tree in a user namespace one level below the caller's, its other namespaces owned by it")
        case "tun", "tun_ns": return no("tun devices are not carried")
        case "aio_remap": return no("AIO rings are not carried")
        case "loginuid": return no("loginuid is not carried")
        case "autofs": return no("autofs mounts are not carried")
        case "tcp_half_closed": return no("half-closed TCP connections are not carried")
        case "compat_cr": return no("32-bit tasks are not carried")
        case "sk_unix_file": return no("UNIX sockets bound at deleted paths are not carried")
        case "net_diag_raw": return no("raw sockets are not carried")
        case "nsid", "link_nsid", "newifindex": return no("network devices other than lo are not carried")
        case "nftables", "network_lock_nftables": return no("the network lock uses iptables only")
        case "has_ipt_legacy": return kernel(exists("/usr/sbin/iptables-legacy"), "iptables-legacy")
        case "apparmor_stacking": return no("AppArmor profiles are not carried")
        case "memfd_hugetlb": return kernel(exists("/sys/kernel/mm/hugepages"), "hugetlb memfds (MFD_HUGETLB)")
        case "move_mount_set_group": return no("mount sharing groups of external mounts are not carried")
        case "ipv6_freebind": return no("IPV6_FREEBIND is not carried")
        case "overlayfs_maps": return yes("mappings of files on overlayfs")
        case "breakpoints": return no("hardware breakpoints are not carried")
        default: return no("not known to the engine")
        }
    }

    private static func fdinfoHas(_ key: String) -> Bool {
        ((try? String(contentsOfFile: "/proc/self/fdinfo/0", encoding: .utf8)) ?? "").contains(key)
    }

    private static func statusHas(_ key: String) -> Bool {
        ((try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? "").contains(key)
    }
}
