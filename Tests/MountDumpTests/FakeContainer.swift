// Real mount namespaces for the mount tests: a "container" made the way runc makes one
// (its own mount, pid, net and ipc namespaces, a rootfs bind-mounted on itself, mounts
// under it, pivot_root into it), and a bare process in new namespaces to restore into.

import Foundation
import Testing
import MountDump
import ProcFS
import SystemTestSupport
#if canImport(Glibc)
import Glibc
#endif

enum Shell {
    /// Runs a command to completion; returns its output, or throws with its stderr.
    @discardableResult
    static func run(_ path: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw TestFailure("\(path) \(args.joined(separator: " ")): exit \(p.terminationStatus): \(String(decoding: e, as: UTF8.self))")
        }
        return String(decoding: o, as: UTF8.self)
    }

    static func sh(_ script: String) throws { try run("/bin/sh", ["-c", script]) }
}

/// A started process and the pid of the task that matters in it (the init of its new pid
/// namespace, a child of unshare --fork).
final class Started {
    let process: Process
    let pid: Int32

    init(_ args: [String], ready: () -> Bool = { true }) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = args
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var child: Int32?
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if !process.isRunning { throw TestFailure("unshare \(args.joined(separator: " ")) exited with \(process.terminationStatus)") }
            if child == nil,
               let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/task/\(process.processIdentifier)/children", encoding: .utf8),
               let first = text.split(separator: " ").first, let p = Int32(first) {
                child = p
            }
            if let child, ready(), (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(child)/exe"))?.hasSuffix("busybox") ?? true {
                pid = child
                return
            }
            usleep(20_000)
        }
        process.terminate()
        throw TestFailure("unshare \(args.joined(separator: " ")) did not get ready")
    }

    func stop() {
        kill(pid, SIGKILL)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// The runc-like container of the tests. `extraSetup` adds shell lines before the pivot
/// ($R is the rootfs).
final class FakeContainer {
    let scratch: Scratch
    let rootfs: String
    let started: Started
    var pid: Int32 { started.pid }

    static let busybox = "/usr/bin/busybox"

    /// The skeleton every rootfs of these tests has (the restore copies it).
    static func makeRootfs(_ path: String, dirs: [String] = []) throws {
        let base = ["bin", "proc", "dev", "sys", "run", "data", "etc", "tmp", "mnt"]
        for d in base + dirs { try FileManager.default.createDirectory(atPath: path + "/" + d, withIntermediateDirectories: true) }
        try FileManager.default.copyItem(atPath: busybox, toPath: path + "/bin/busybox")
        try "data-file\n".write(toFile: path + "/data/file", atomically: true, encoding: .utf8)
        try "container\n".write(toFile: path + "/etc/hostname", atomically: true, encoding: .utf8)
        try "".write(toFile: path + "/etc/hostname.bind", atomically: true, encoding: .utf8)
    }

    init(scratch: Scratch, rootfs: String, setup: String) throws {
        self.scratch = scratch
        self.rootfs = rootfs
        let script = """
        set -e
        R=\(rootfs)
        mount --bind "$R" "$R"
        mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
        \(setup)
        cd "$R"
        pivot_root . .
        exec /bin/busybox sh -c 'umount -l . && cd / && /bin/busybox touch /ready && exec /bin/busybox sleep 100000'
        """
        let ready = rootfs + "/ready"
        started = try Started(["--mount", "--pid", "--fork", "--net", "--ipc", "--propagation", "private",
                               "/bin/sh", "-c", script],
                              ready: { FileManager.default.fileExists(atPath: ready) })
    }
}

/// A bare task to restore into: new mount, pid, net and ipc namespaces, as the restorer
/// creates the root task of a container.
final class RestoreTarget {
    let started: Started
    var pid: Int32 { started.pid }

    init() throws {
        started = try Started(["--mount", "--pid", "--fork", "--net", "--ipc", FakeContainer.busybox, "sleep", "100000"])
    }
}

/// The host's mount table must not change under a test: every mount there before is
/// there after, the same, and no new one involves the test's directory.
struct HostMounts {
    let before: [MountInfoEntry]
    let scratch: String

    init(scratch: String) throws {
        before = try MountInfoEntry.read(pid: getpid())
        self.scratch = scratch
    }

    func expectUnchanged(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let after = try MountInfoEntry.read(pid: getpid())
        for m in before {
            #expect(after.contains(m), "host mount \(m.mountPoint) changed or vanished", sourceLocation: sourceLocation)
        }
        for m in after where !before.contains(m) {
            #expect(!m.mountPoint.hasPrefix(scratch) && !m.root.hasPrefix(scratch) && m.mountPoint != "/",
                    "new host mount \(m.mountPoint) (\(m.root))", sourceLocation: sourceLocation)
        }
    }
}

/// A mount table in a form two namespaces can be compared by: keyed by mount point, with
/// the parent's mount point, the root relative to the root mount's when on its device,
/// and peer groups named by their members.
struct MountView: Equatable, CustomStringConvertible {
    struct Mount: Equatable {
        var parent: String
        var fsType: String
        var source: String
        var root: String
        var options: String
        var superOptions: String
        var shared: String?
        var master: String?
        var unbindable: Bool
    }

    var mounts: [String: Mount]

    init(pid: Int32) throws {
        let list = try MountInfoEntry.read(pid: pid)
        let tree = MountTree(list)
        guard let rootMount = list.first(where: { $0.mountPoint == "/" }) else { throw TestFailure("no root in \(pid)") }
        var groups: [Int: [String]] = [:]
        for m in list { if let g = m.sharedGroup { groups[g, default: []].append(m.mountPoint) } }
        func label(_ g: Int?) -> String? {
            guard let g else { return nil }
            return groups[g].map { $0.sorted().joined(separator: "+") } ?? "external"
        }
        mounts = [:]
        for m in list {
            let onRootDevice = m.devMajor == rootMount.devMajor && m.devMinor == rootMount.devMinor
            var root = m.root
            if m.mountPoint == "/" { root = "<root>" } else if onRootDevice {
                root = m.root.hasPrefix(rootMount.root + "/") ? String(m.root.dropFirst(rootMount.root.count)) : "<host>"
            }
            mounts[m.mountPoint] = Mount(parent: tree.parent(of: m)?.mountPoint ?? "-", fsType: m.fsType, source: m.mountPoint == "/" ? "" : m.source, root: root,
                                         options: m.mountOptions, superOptions: m.mountPoint == "/" ? "" : m.superOptions,
                                         shared: label(m.sharedGroup), master: label(m.masterGroup), unbindable: m.isUnbindable)
        }
    }

    var description: String {
        mounts.keys.sorted().map { k in
            let m = mounts[k]!
            return "\(k) <- \(m.parent) \(m.fsType) \(m.source) [\(m.root)] \(m.options) | \(m.superOptions) shared=\(m.shared ?? "-") master=\(m.master ?? "-")\(m.unbindable ? " unbindable" : "")"
        }.joined(separator: "\n")
    }
}
