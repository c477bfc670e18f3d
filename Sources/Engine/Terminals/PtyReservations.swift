import Foundation
import LinuxKernel
import Images

/// Ptys made before the tree's files, because a mount binds one of their slaves (runc's
/// /dev/console is a bind of /dev/pts/0): the mount restore makes the pty in the new
/// devpts with the dumped index, and the terminal restore takes its master from here.
/// One per restore, in its RestoreSession.
public final class PtyReservations {
    private var masters: [UInt32: Int32] = [:]
    private let lock = NSLock()

    public init() {}

    deinit { release() }

    /// Makes pty `index` in the devpts mounted at `devpts` (an fd on its root), unless its
    /// slave exists already.
    public func reserve(_ index: UInt32, devpts: Int32) throws {
        if faccessat(devpts, "\(index)", F_OK, 0) == 0 { return }
        var tried: [Int32] = []
        defer { tried.forEach { close($0) } }
        for _ in 0..<32 {
            let fd = openat(devpts, "ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
            if fd < 0 { throw CheckpointError.errno("open ptmx of the new devpts for pty \(index)") }
            let t = Terminal(fd: fd, name: "the new pty for \(index)")
            let got = try t.index()
            if got == index {
                try t.setInt("TIOCSPTLCK", Terminal.Request.tiocsptlck, 0)
                lock.withLock { masters[index] = fd }
                return
            }
            tried.append(fd)
            if got > index { break }
        }
        throw CheckpointError(.busy, "pty \(index) cannot be made in the new devpts (a mount binds its slave)")
    }

    /// The master made for `index`, now the caller's.
    func take(_ index: UInt32) -> Int32? {
        lock.withLock { masters.removeValue(forKey: index) }
    }

    /// Closes what no terminal took (a failed or finished restore).
    func release() {
        lock.withLock {
            masters.values.forEach { close($0) }
            masters.removeAll()
        }
    }
}
