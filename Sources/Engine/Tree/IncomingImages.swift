import Foundation
import LinuxKernel
import Images

/// An image directory whose last images are still on their way: `receive` (the destination
/// of a migration) starts runc's restore while the source is still frozen and dumping, and
/// marks the directory with this file until every image is in. The restore and its
/// lazy-pages daemon wait for the mark to go before they read an image. The file holds the
/// pid of the process that will complete the directory and, once it gives up, why.
public enum IncomingImages {
    public static func mark(_ dir: String) throws {
        try write(dir, "\(getpid())\n")
    }

    /// Every image is in.
    public static func complete(_ dir: String) {
        unlink((dir as NSString).appendingPathComponent(ImageDirectory.incomingMark))
    }

    /// The images will not come: the waiting restore fails with `reason`.
    public static func abandon(_ dir: String, reason: String) {
        try? write(dir, "\(getpid())\n\(reason)\n")
    }

    /// Returns once `dir` holds no mark; fails when its writer gave up or exited, or after `timeout` seconds.
    public static func wait(_ dir: String, timeout: Double = 120, log: Log) throws {
        let path = (dir as NSString).appendingPathComponent(ImageDirectory.incomingMark)
        guard access(path, F_OK) == 0 else { return }
        log.info("images in \(dir) still incoming: waiting for them")
        let start = DispatchTime.now()
        while let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let lines = text.split(separator: "\n").map(String.init)
            if lines.count > 1 { throw CheckpointError(.invalidState, "images in \(dir): they will not come: \(lines[1])") }
            if let pid = lines.first.flatMap({ Int32($0) }), kill(pid, 0) != 0, errno == ESRCH {
                throw CheckpointError(.invalidState, "images in \(dir): the process completing them (pid \(pid)) exited before they were in")
            }
            if Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 > timeout {
                throw CheckpointError(.timeout, "images in \(dir): still incoming after \(Int(timeout)) s (remove \(path) if nothing will complete them)")
            }
            usleep(500)
        }
        log.info("images in \(dir) complete after \((DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1000) us")
    }

    private static func write(_ dir: String, _ text: String) throws {
        let path = (dir as NSString).appendingPathComponent(ImageDirectory.incomingMark)
        // Whole or not at all: a reader never sees half a reason.
        let tmp = path + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8)), rename(tmp, path) == 0 else {
            throw CheckpointError.errno("write \(path)")
        }
    }
}
