import Foundation

/// One piece of work on a thread of its own, waited for.
final class InBackground<T> {
    private var result: Result<T, Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ work: @escaping () throws -> T) {
        Thread { [self] in
            result = Result { try work() }
            done.signal()
        }.start()
    }

    private var waited = false

    func wait() throws -> T {
        if !waited { done.wait(); waited = true }
        return try result!.get()
    }
}
