import Foundation

/// Work on a thread of its own (runc checkpoint, a page server's session) while the
/// control connection goes on in this one.
final class BackgroundWork: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var failure: Error?
    private var finished = false

    init(_ body: @escaping () throws -> Void) {
        Thread { [self] in
            do { try body() } catch { failure = error }
            done.signal()
        }.start()
    }

    /// Polls `condition` every millisecond until it holds (true) or the work ends (false).
    func waitUntil(_ condition: () -> Bool) -> Bool {
        while true {
            if condition() { return true }
            if done.wait(timeout: .now() + .milliseconds(1)) == .success { finished = true; return condition() }
        }
    }

    /// The work's end: its failure, if any.
    func wait() -> Error? {
        if !finished { done.wait(); finished = true }
        return failure
    }

    /// The work's end within `seconds`: nil when it did not end in time, else its failure, if any.
    func wait(seconds: Int) -> Error?? {
        if !finished {
            guard done.wait(timeout: .now() + .seconds(seconds)) == .success else { return nil }
            finished = true
        }
        return .some(failure)
    }
}
