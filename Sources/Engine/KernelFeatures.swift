import Foundation
import LinuxKernel
import Images
import CShim
import ProcFS

/// What `check` reports: each kernel feature the engine relies on, probed for real.
public struct KernelFeature {
    public let name: String
    public let present: Bool
    public let required: Bool
    public let detail: String
}

public enum KernelFeatures {
    public static func probe() -> [KernelFeature] {
        var out: [KernelFeature] = []
        func add(_ name: String, _ present: Bool, required: Bool = true, _ detail: String) {
            out.append(KernelFeature(name: name, present: present, required: required, detail: detail))
        }
        let me = Int(getpid())
        let clone3 = Syscall.result(SyscallNumber.clone3)
        add("clone3 with set_tid", clone3 != .failure(.ENOSYS), "restores tasks with their original PIDs (Linux 5.5)")
        var gotFd = false
        if case .success(let pidfd) = Syscall.result(SyscallNumber.pidfdOpen, me) {
            if case .success(let fd) = Syscall.result(SyscallNumber.pidfdGetfd, pidfd, 0) {
                gotFd = true
                close(Int32(fd))
            }
            close(Int32(pidfd))
        }
        add("pidfd_open/pidfd_getfd", gotFd, "hands restored files to tasks (Linux 5.6)")
        add("kcmp", (try? Syscall.result(SyscallNumber.kcmp, me, me, KcmpType.file).get()) != nil, "finds open files shared between tasks")
        var mapSize: UInt32 = 0
        // PR_SET_MM, PR_SET_MM_MAP_SIZE: answers the size of struct prctl_mm_map.
        let mapSizeResult = withUnsafeMutablePointer(to: &mapSize) { Syscall.result(SyscallNumber.prctl, 35, 15, Int(bitPattern: $0)) }
        add("prctl PR_SET_MM_MAP", mapSizeResult == .success(0) && mapSize == 104,
            "restores mm fields, auxv and the exe link")
        add("/proc/PID/map_files", access("/proc/self/map_files", R_OK) == 0, "dumps and shares shared anonymous memory")
        var v = utsname()
        uname(&v)
        let release = withUnsafeBytes(of: &v.release) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        let parts = release.split(separator: ".").prefix(2).compactMap { Int($0.prefix { $0.isNumber }) }
        let atLeast513 = parts.count == 2 && (parts[0] > 5 || (parts[0] == 5 && parts[1] >= 13))
        add("PTRACE_GET_RSEQ_CONFIGURATION", atLeast513, "dumps glibc's rseq registration (Linux 5.13; kernel \(release))")
        let caps = (try? TaskStatus.read(pid: getpid(), tid: nil).capEff) ?? 0
        add("CAP_SYS_ADMIN", caps & (1 << 21) != 0, "map_files, PR_SET_MM_MAP exe link, set_tid")
        add("CAP_SYS_PTRACE", caps & (1 << 19) != 0, "seizes tasks of other users")
        add("CAP_CHECKPOINT_RESTORE", caps & (1 << 40) != 0, required: false, "set_tid without CAP_SYS_ADMIN (Linux 5.9)")
        add("time namespaces", access("/proc/self/ns/time", F_OK) == 0, required: false, "keeps CLOCK_MONOTONIC across hosts")
        add("userfaultfd", access("/proc/sys/vm/unprivileged_userfaultfd", F_OK) == 0, required: false, "lazy restore")
        return out
    }
}
