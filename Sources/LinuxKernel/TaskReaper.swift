import Foundation
import CShim

/// Kills tasks we trace and collects their deaths, in whatever order the kernel lets them
/// go: a traced task's exit is reported to us first, and a pid namespace's init cannot
/// finish dying before its traced children are reaped.
public enum TaskReaper {
    public static func killAndReap(_ tids: [Int32], timeout: Double = 10) {
        for tid in tids { kill(tid, SIGKILL) }
        var pending = Set(tids)
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
        while !pending.isEmpty && DispatchTime.now().uptimeNanoseconds < deadline {
            for tid in pending {
                var status: Int32 = 0
                let r = waitpid(tid, &status, Int32(__WALL) | WNOHANG)
                if r == tid && (oc_wifexited(status) != 0 || oc_wifsignaled(status) != 0) || (r < 0 && errno == ECHILD) {
                    pending.remove(tid)
                }
            }
            if !pending.isEmpty { usleep(1000) }
        }
    }
}
