import Foundation
import LinuxKernel
import CShim
import Images

extension RestoreResources {
    static func openSignalfd(_ s: SignalfdEntry, _ what: String) throws -> Int32 {
        var mask = s.sigmask
        let flags = Int(s.flags & UInt32(O_NONBLOCK)) | Int(O_CLOEXEC)
        return try withUnsafeMutablePointer(to: &mask) {
            try Syscall.rawFd("signalfd4 for \(what)", SyscallNumber.signalfd4, -1, Int(bitPattern: $0), 8, flags)
        }
    }
}
