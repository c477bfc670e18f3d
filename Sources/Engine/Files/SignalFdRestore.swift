import Foundation
import LinuxKernel
import CShim
import Images

extension RestoreResources {
    static func openSignalfd(_ s: SignalfdEntry, _ what: String) throws -> Int32 {
        var mask = s.sigmask
        let flags = Int(s.flags & UInt32(O_NONBLOCK)) | Int(O_CLOEXEC)
        return try checked(oc_syscall(289 /* signalfd4 */, -1, Int(bitPattern: withUnsafeMutablePointer(to: &mask) { $0 }), 8, flags, 0, 0),
                           "signalfd4 for \(what)")
    }
}
