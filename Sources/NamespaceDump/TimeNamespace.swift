import Foundation
import CShim
import LinuxKernel
import Images
import ProcFS

/// A clock reading or offset, normalized so that 0 <= nanoseconds < 1e9.
public struct ClockValue: Equatable, Sendable, CustomStringConvertible {
    public var seconds: Int64
    public var nanoseconds: Int64

    public init(seconds: Int64, nanoseconds: Int64) {
        var s = seconds, ns = nanoseconds
        s += ns / 1_000_000_000
        ns %= 1_000_000_000
        if ns < 0 { ns += 1_000_000_000; s -= 1 }
        self.seconds = s
        self.nanoseconds = ns
    }

    public static let zero = ClockValue(seconds: 0, nanoseconds: 0)

    public static func + (a: ClockValue, b: ClockValue) -> ClockValue {
        ClockValue(seconds: a.seconds + b.seconds, nanoseconds: a.nanoseconds + b.nanoseconds)
    }

    public static func - (a: ClockValue, b: ClockValue) -> ClockValue {
        ClockValue(seconds: a.seconds - b.seconds, nanoseconds: a.nanoseconds - b.nanoseconds)
    }

    public var description: String { "\(seconds).\(String(format: "%09lld", nanoseconds))" }

    static func now(_ clock: clockid_t) -> ClockValue {
        var ts = Glibc.timespec()
        clock_gettime(clock, &ts)
        return ClockValue(seconds: Int64(ts.tv_sec), nanoseconds: Int64(ts.tv_nsec))
    }
}

/// The offsets of a time namespace's clocks from the host's (/proc/PID/timens_offsets).
public struct TimeNamespaceOffsets: Equatable, Sendable {
    public var monotonic: ClockValue
    public var boottime: ClockValue

    public init(monotonic: ClockValue, boottime: ClockValue) {
        self.monotonic = monotonic
        self.boottime = boottime
    }

    public static let zero = TimeNamespaceOffsets(monotonic: .zero, boottime: .zero)

    /// /proc/PID/timens_offsets: the offsets of the namespace PID's children get
    /// (time_for_children), which is PID's own unless it unshared one and has not forked.
    public static func read(pid: Int32) throws -> TimeNamespaceOffsets {
        let path = "/proc/\(pid)/timens_offsets"
        do { return try parse(try readProcFile(path)) } catch let e as CheckpointError {
            throw CheckpointError(e.code, "\(path): \(e.message)")
        } catch {
            throw CheckpointError(.notFound, "read \(path): \(error)", cause: error)
        }
    }

    /// "monotonic <sec> <nsec>\nboottime <sec> <nsec>\n" (clock names or ids 1 and 7).
    public static func parse(_ text: String) throws -> TimeNamespaceOffsets {
        var offsets = TimeNamespaceOffsets.zero
        var seen = Set<String>()
        for line in text.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count == 3, let s = Int64(f[1]), let ns = Int64(f[2]) else {
                throw CheckpointError(.invalidArgument, "bad timens_offsets line \"\(line)\"")
            }
            switch f[0] {
            case "monotonic", "1": offsets.monotonic = ClockValue(seconds: s, nanoseconds: ns); seen.insert("monotonic")
            case "boottime", "7": offsets.boottime = ClockValue(seconds: s, nanoseconds: ns); seen.insert("boottime")
            default: throw CheckpointError(.invalidArgument, "unknown clock in timens_offsets line \"\(line)\"")
            }
        }
        guard seen.count == 2 else { throw CheckpointError(.invalidArgument, "timens_offsets lacks \(["monotonic", "boottime"].filter { !seen.contains($0) })") }
        return offsets
    }

    /// What /proc/PID/timens_offsets accepts: one "<clockid> <sec> <nsec>" line per clock.
    public var procText: String {
        "\(CLOCK_MONOTONIC) \(monotonic.seconds) \(monotonic.nanoseconds)\n\(CLOCK_BOOTTIME) \(boottime.seconds) \(boottime.nanoseconds)\n"
    }

    /// The offsets that make a new namespace's clocks continue from the dumped readings
    /// (CRIU's prepare_timens): dumped value minus the host clock now, so the time the
    /// tree spent dumped does not show in its monotonic and boot-time clocks.
    public static func continuing(from entry: TimensEntry, hostMonotonic: ClockValue, hostBoottime: ClockValue) -> TimeNamespaceOffsets {
        TimeNamespaceOffsets(monotonic: TimeNamespace.value(entry.monotonic) - hostMonotonic,
                             boottime: TimeNamespace.value(entry.boottime) - hostBoottime)
    }
}

/// timens-<id>.img: the monotonic and boot-time clocks of a time namespace, read as its
/// tasks read them at dump time (what CRIU records), and the restore-side steps.
///
/// Offsets can be written only before the first task enters the namespace, so a restore
/// cannot create the root with CLONE_NEWTIME and fill it afterwards: the thread that
/// creates the root calls `enterForChildren` first, then clones the root without
/// CLONE_NEWTIME (a child of that thread, made without CLONE_VM, starts in the new
/// namespace; an exec also moves a task there).
public enum TimeNamespace {
    /// Clocks in `pid`'s time namespace now: the host's clocks plus its offsets (a thread
    /// of a multi-threaded process cannot join a time namespace to read them there).
    public static func clocks(pid: Int32) throws -> TimensEntry {
        let offsets = try TimeNamespaceOffsets.read(pid: pid)
        let own = try TimeNamespaceOffsets.read(pid: getpid())
        var e = TimensEntry()
        e.monotonic = timespec(ClockValue.now(CLOCK_MONOTONIC) - own.monotonic + offsets.monotonic)
        e.boottime = timespec(ClockValue.now(CLOCK_BOOTTIME) - own.boottime + offsets.boottime)
        return e
    }

    public static func dump(pid: Int32, id: UInt32, images: ImageDirectory, log: Log) throws {
        let e = try clocks(pid: pid)
        try images.write(.timens(id), [e])
        log.info("time namespace of pid \(pid): monotonic \(value(e.monotonic)), boottime \(value(e.boottime))")
    }

    public static func load(id: UInt32, images: ImageDirectory) throws -> TimensEntry {
        try images.readOne(.timens(id), as: TimensEntry.self)
    }

    /// The offsets a new namespace needs, computed from the host clocks now: call right
    /// before creating it.
    public static func offsets(continuing entry: TimensEntry) throws -> TimeNamespaceOffsets {
        let own = try TimeNamespaceOffsets.read(pid: Syscall.gettid())
        return .continuing(from: entry,
                           hostMonotonic: ClockValue.now(CLOCK_MONOTONIC) - own.monotonic,
                           hostBoottime: ClockValue.now(CLOCK_BOOTTIME) - own.boottime)
    }

    /// On the calling thread only: unshare(CLONE_NEWTIME) and give the new namespace
    /// `offsets`. Children this thread creates afterwards (clone without CLONE_VM, or any
    /// child that execs) start in it; the thread itself stays in its own time namespace,
    /// and cannot switch back its children's (setns into a time namespace needs a
    /// single-threaded process), so use a thread made for the purpose.
    public static func enterForChildren(_ offsets: TimeNamespaceOffsets) throws {
        let tid = Syscall.gettid()
        try Syscall.raw("unshare(CLONE_NEWTIME) on thread \(tid)", SyscallNumber.unshare, CloneFlags.newTime.argument)
        // /proc/self is the thread-group leader; /proc/<tid> is this thread.
        let path = "/proc/\(tid)/timens_offsets"
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open \(path)") }
        defer { close(fd) }
        let bytes = Array(offsets.procText.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n != bytes.count {
            throw CheckpointError.errno("write time namespace offsets (monotonic \(offsets.monotonic), boottime \(offsets.boottime)) to \(path)")
        }
    }

    /// `enterForChildren` with the offsets that continue the dumped clocks of namespace `id`.
    public static func enterForChildren(id: UInt32, images: ImageDirectory, log: Log) throws {
        let offsets = try offsets(continuing: try load(id: id, images: images))
        try enterForChildren(offsets)
        log.info("time namespace created with offsets monotonic \(offsets.monotonic), boottime \(offsets.boottime)")
    }

    static func value(_ t: Timespec) -> ClockValue {
        ClockValue(seconds: Int64(bitPattern: t.tvSec), nanoseconds: Int64(bitPattern: t.tvNsec))
    }

    static func timespec(_ v: ClockValue) -> Timespec {
        var t = Timespec()
        t.tvSec = UInt64(bitPattern: v.seconds)
        t.tvNsec = UInt64(bitPattern: v.nanoseconds)
        return t
    }
}
