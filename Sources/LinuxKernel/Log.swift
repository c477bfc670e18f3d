import Foundation

/// The engine's log: CRIU's -o FILE and -v0..4. Errors also go to the log, so that the
/// one-line error on stderr has its details in the file.
public final class Log: @unchecked Sendable {
    public let level: Int
    private let handle: FileHandle?
    private let start = DispatchTime.now()

    public init(path: String?, level: Int) throws {
        self.level = level
        if let path {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                let err = Errno.current
                throw CheckpointError(.invalidArgument, "log file \(path): cannot create (\(err.detail))", errno: err)
            }
            handle = FileHandle(forWritingAtPath: path)
        } else {
            handle = nil
        }
    }

    public static let silent = try! Log(path: nil, level: 0)

    public func write(_ lvl: Int, _ message: @autoclosure () -> String) {
        guard lvl <= level, let handle else { return }
        let t = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        handle.write(String(format: "(%08.6f) ", t).appending(message()).appending("\n").data(using: .utf8)!)
    }

    public func error(_ m: @autoclosure () -> String) { write(1, "Error: " + m()) }
    public func warn(_ m: @autoclosure () -> String) { write(2, "Warn: " + m()) }
    public func info(_ m: @autoclosure () -> String) { write(3, m()) }
    public func debug(_ m: @autoclosure () -> String) { write(4, m()) }
}

/// Microseconds between two instants, for the stats images.
public func micros(since start: DispatchTime) -> UInt32 {
    UInt32(min(UInt64(UInt32.max), (DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1000))
}
