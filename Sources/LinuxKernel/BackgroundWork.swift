import Foundation

/// Work on a thread of its own, waited for: the dump's reads that overlap the frozen window
/// (smaps, /proc/locks, the extensions), the front end's runc runs and page servers beside
/// a migration's control connection.
public final class BackgroundWork<T>: @unchecked Sendable {
    private var result: Result<T, Error>?
    private let done = DispatchSemaphore(value: 0)
    private var finished = false

    public init(_ work: @escaping () throws -> T) {
        Thread { [self] in
            result = Result { try work() }
            done.signal()
        }.start()
    }

    /// The work's result, once it ends; its error, thrown.
    public func wait() throws -> T {
        if !finished { done.wait(); finished = true }
        return try result!.get()
    }

    /// Whether the work ended within `seconds`.
    public func ended(within seconds: Int) -> Bool {
        if !finished { finished = done.wait(timeout: .now() + .seconds(seconds)) == .success }
        return finished
    }

    /// Polls `condition` every millisecond until it holds (true) or the work ends (false).
    public func waitUntil(_ condition: () -> Bool) -> Bool {
        while true {
            if condition() { return true }
            if done.wait(timeout: .now() + .milliseconds(1)) == .success { finished = true; return condition() }
        }
    }
}
