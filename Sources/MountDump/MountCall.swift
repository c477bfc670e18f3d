import Foundation
import CShim
import LinuxKernel

/// The mount syscalls this module makes, raw (glibc exports few of them to Swift).
/// Every failure throws a CheckpointError saying what was done, with the errno the
/// callers branch on.
enum MountCall {
    static let atEmptyPath = 0x1000
    static let atRecursive = 0x8000
    static let openTreeClone = 1
    static let moveMountFEmptyPath = 0x4
    static let moveMountTEmptyPath = 0x40
    static let moveMountSetGroup = 0x100
    static let mntDetach: Int = 2
    static let resolveNoMagicLinks = ResolveFlag.noMagicLinks
    static let resolveInRoot = ResolveFlag.inRoot

    /// Per-mount attributes of mount_setattr(2).
    static let attrReadOnly: UInt64 = 0x1, attrNoSuid: UInt64 = 0x2, attrNoDev: UInt64 = 0x4
    static let attrNoExec: UInt64 = 0x8, attrAtimeMask: UInt64 = 0x70, attrNoAtime: UInt64 = 0x10
    static let attrStrictAtime: UInt64 = 0x20, attrNoDirAtime: UInt64 = 0x80
    static let attrNoSymFollow: UInt64 = 0x20_0000

    @discardableResult
    static func raw(_ what: @autoclosure () -> String, _ nr: Int, _ a1: Int = 0, _ a2: Int = 0,
                    _ a3: Int = 0, _ a4: Int = 0, _ a5: Int = 0) throws -> Int {
        try Syscall.raw(what(), nr, a1, a2, a3, a4, a5)
    }

    /// Runs `body` with the address of `s` as a C string (0 for nil).
    @discardableResult
    static func withCString<R>(_ s: String?, _ body: (Int) throws -> R) rethrows -> R {
        guard let s else { return try body(0) }
        return try s.withCString { try body(Int(bitPattern: $0)) }
    }

    static func mount(_ source: String?, _ target: String, _ type: String?, _ flags: MountFlags,
                      _ data: String?, _ what: @autoclosure () -> String) throws {
        try withCString(source) { src in
            try withCString(target) { tgt in
                try withCString(type) { typ in
                    try withCString(data) { dat in
                        try raw(what(), SyscallNumber.mount, src, tgt, typ, Int(flags.rawValue), dat)
                    }
                }
            }
        }
    }

    static func umount(_ target: String, flags: Int, _ what: @autoclosure () -> String) throws {
        try withCString(target) { try raw(what(), SyscallNumber.umount2, $0, flags) }
    }

    static func pivotRoot(_ newRoot: String, _ putOld: String) throws {
        try withCString(newRoot) { n in try withCString(putOld) { o in try raw("pivot_root(\(newRoot), \(putOld))", SyscallNumber.pivotRoot, n, o) } }
    }

    /// A detached copy of the mount at `fd` (not its children), as an fd.
    static func cloneMount(_ fd: Int32, _ what: @autoclosure () -> String) throws -> Int32 {
        try withCString("") { empty in
            Int32(try raw(what(), SyscallNumber.openTree, Int(fd), empty, openTreeClone | Int(O_CLOEXEC) | atEmptyPath))
        }
    }

    /// Puts `to` in the peer group of `from` (and under its master): move_mount(MOVE_MOUNT_SET_GROUP).
    static func setGroup(from: Int32, to: Int32, _ what: @autoclosure () -> String) throws {
        try withCString("") { empty in
            try raw(what(), SyscallNumber.moveMount, Int(from), empty, Int(to), empty,
                    moveMountSetGroup | moveMountFEmptyPath | moveMountTEmptyPath)
        }
    }

    /// mount_setattr(2) on the one mount `fd` is the root of.
    static func setAttributes(_ fd: Int32, set: UInt64 = 0, clear: UInt64 = 0, propagation: MountFlags = [],
                              _ what: @autoclosure () -> String) throws {
        var attr: [UInt64] = [set, clear, UInt64(propagation.rawValue), 0]
        try withCString("") { empty in
            try attr.withUnsafeMutableBytes { buf in
                try raw(what(), SyscallNumber.mountSetattr, Int(fd), empty, atEmptyPath, Int(bitPattern: buf.baseAddress), buf.count)
            }
        }
    }

    /// openat2(2) of `path` with `root` as the root, so symlinks and ".." cannot leave it.
    static func openInRoot(_ root: Int32, _ path: String, flags: Int32,
                           _ what: @autoclosure () -> String) throws -> Int32 {
        var how: [UInt64] = [UInt64(UInt32(bitPattern: flags | O_CLOEXEC)), 0, resolveInRoot | resolveNoMagicLinks]
        return try withCString(MountPath.relativeToRoot(path)) { p in
            try how.withUnsafeMutableBytes { buf in
                Int32(try raw(what(), SyscallNumber.openat2, Int(root), p, Int(bitPattern: buf.baseAddress), buf.count))
            }
        }
    }

    /// A new, detached mount of a fresh `type` superblock with `options` (fsopen/fsconfig/fsmount).
    static func freshDetached(_ type: String, source: String, options: [String]) throws -> Int32 {
        let fsfd = Int32(try withCString(type) { try raw("fsopen(\(type))", SyscallNumber.fsopen, $0, 1 /* FSOPEN_CLOEXEC */) })
        defer { close(fsfd) }
        func config(_ cmd: Int, _ key: String?, _ value: String?) throws {
            try withCString(key) { k in
                try withCString(value) { v in
                    try raw("fsconfig(\(type), \(key ?? "create")\(value.map { "=" + $0 } ?? ""))", SyscallNumber.fsconfig, Int(fsfd), cmd, k, v, 0)
                }
            }
        }
        try config(1 /* FSCONFIG_SET_STRING */, "source", source)
        for option in options where !option.isEmpty {
            if let eq = option.firstIndex(of: "=") {
                try config(1, String(option[..<eq]), String(option[option.index(after: eq)...]))
            } else {
                try config(0 /* FSCONFIG_SET_FLAG */, option, nil)
            }
        }
        try config(6 /* FSCONFIG_CMD_CREATE */, nil, nil)
        return Int32(try raw("fsmount(\(type))", SyscallNumber.fsmount, Int(fsfd), 1 /* FSMOUNT_CLOEXEC */, 0))
    }

    /// A path naming the file `fd` is open on, for calls that take paths. /proc/thread-self
    /// is the calling thread's own view, valid while /proc is the host's (before pivot_root).
    static func fdPath(_ fd: Int32) -> String { "/proc/thread-self/fd/\(fd)" }
}
