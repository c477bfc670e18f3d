import Foundation

/// Prints "label: done / total MiB (pct%)" on one line of stderr while a long pack or unpack
/// runs, at most ten times a second; silent when stderr is not a terminal.
public final class ProgressReporter {
    private let label: String
    private let isActive: Bool
    private var total: Int64 = 0
    private var lastPrint: UInt64 = 0

    public init(label: String) {
        self.label = label
        isActive = isatty(STDERR_FILENO) == 1
    }

    func start(total: Int64) {
        self.total = total
    }

    func update(done: Int64) {
        guard isActive else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard now - lastPrint >= 100_000_000 else { return }
        lastPrint = now
        print(done)
    }

    func finish() {
        guard isActive else { return }
        print(total)
        FileHandle.standardError.write("\n".data(using: .utf8)!)
    }

    private func print(_ done: Int64) {
        let mib = { (bytes: Int64) in String(format: "%.1f", Double(bytes) / 1048576) }
        let percent = total > 0 ? min(100, done * 100 / total) : 100
        let line = "\r\(label): \(mib(done)) / \(mib(total)) MiB (\(percent)%)"
        FileHandle.standardError.write(line.data(using: .utf8)!)
    }
}
