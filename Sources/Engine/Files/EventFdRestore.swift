import Foundation
import LinuxKernel
import CShim
import Images

extension RestoreResources {
    static func openEventfd(_ e: EventfdFileEntry, _ what: String) throws -> Int32 {
        let semaphore = e.flags & EventfdFlags.semaphore != 0
        let flags = Int(e.flags & UInt32(O_NONBLOCK)) | Int(O_CLOEXEC) | (semaphore ? 1 : 0)
        guard e.counter < UInt64.max else { throw CheckpointError(.image, "\(what): eventfd counter \(e.counter) is out of range") }
        let fd = try Syscall.rawFd("eventfd2 for \(what)", SyscallNumber.eventfd2, 0, flags)
        // eventfd2 takes an unsigned int; a write adds the full 64-bit counter.
        if e.counter > 0 {
            var c = e.counter
            if write(fd, &c, 8) != 8 { close(fd); throw CheckpointError.errno("set eventfd counter to \(e.counter) for \(what)") }
        }
        return fd
    }
}
