import Foundation
import LinuxKernel
import Images
import ProcFS

/// The restore of a tree in its own user namespace, as CRIU orders it: the root is cloned
/// with CLONE_NEWUSER together with every other new namespace, so the kernel makes the user
/// namespace first and the others owned by it; the maps are written from outside (we are
/// in its parent) before anything inside depends on them. Every task then lives inside from
/// its first instruction, with all capabilities there and none here.
extension UserNamespace {
    /// setgroups first: it can be denied only before gid_map is written.
    func writeMaps(pid: Int32) throws {
        if setgroupsDenied { try put("deny", "/proc/\(pid)/setgroups") }
        try put(Self.text(uidMap), "/proc/\(pid)/uid_map")
        try put(Self.text(gidMap), "/proc/\(pid)/gid_map")
    }

    private static func text(_ map: [Extent]) -> String {
        map.map { "\($0.first) \($0.lowerFirst) \($0.count)\n" }.joined()
    }

    /// One write(2), as the kernel wants a map.
    private func put(_ text: String, _ path: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open \(path)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        if Glibc.write(fd, bytes, bytes.count) != bytes.count {
            throw CheckpointError.errno("write \(text.debugDescription) to \(path)")
        }
    }

    /// With setgroups denied no task inside can set its groups: they are those of the
    /// thread that clones the root, which takes here (setgroups of this thread only, never
    /// glibc's, which sets every thread's) the host groups behind the root's dumped ones.
    func prepareCloneThread(groups: [UInt32]) throws {
        guard setgroupsDenied else { return }
        let host = try groups.map { g -> UInt32 in
            if let h = Self.host(g, gidMap) { return h }
            // Any host gid the map leaves out reads as the overflow gid inside.
            let unmapped = (0..<UInt32.max).first { h in !gidMap.contains { h >= $0.lowerFirst && UInt64(h) < UInt64($0.lowerFirst) + UInt64($0.count) } }
            guard g == Self.overflowID, let u = unmapped else {
                throw CheckpointError(.image, "userns image: group \(g) is not in the gid map")
            }
            return u
        }
        try host.withUnsafeBufferPointer {
            _ = try Syscall.raw("setgroups of the thread that clones the root", SyscallNumber.setgroups, host.count, Int(bitPattern: $0.baseAddress))
        }
    }

    /// Whether thread `host` of `pid` already has `groups` (it inherited them, setgroups
    /// denied); refuses a task whose dumped groups differ from those, which no call can set.
    func groupsInPlace(_ groups: [UInt32], pid: Int32, host: Int32, hostPid: Int32) throws -> Bool {
        guard setgroupsDenied else { return false }
        let have = try TaskStatus.read(pid: hostPid, tid: host).groups.map { Self.inside($0, gidMap) }
        guard have == groups else {
            throw CheckpointError(.unsupported, "pid \(pid): its groups \(groups) differ from the root's \(have), and setgroups is denied in its user namespace")
        }
        return true
    }
}

/// The restorer's end of the socket every task of a user-namespaced tree inherits in place
/// of the restorer's pidfd: pidfd_getfd on the restorer needs CAP_SYS_PTRACE in our user
/// namespace, which no task inside has, so the files travel as SCM_RIGHTS instead.
final class RestorerSocket {
    let ours: Int32
    /// The end the root stub inherits (the restorer closes its copy when done).
    let theirs: Int32

    init() throws {
        var sv: [Int32] = [-1, -1]
        if socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) != 0 {
            throw CheckpointError.errno("socketpair for handing files to the restored tasks")
        }
        ours = sv[0]; theirs = sv[1]
    }

    deinit { close(ours); close(theirs) }

    /// Sends our fd `fd` as one datagram of one byte.
    func send(_ fd: Int32) throws {
        var control = [UInt8](repeating: 0, count: 24)
        control.withUnsafeMutableBytes { c in
            c.storeBytes(of: 20, toByteOffset: 0, as: Int.self)
            c.storeBytes(of: SOL_SOCKET, toByteOffset: 8, as: Int32.self)
            c.storeBytes(of: Int32(SCM_RIGHTS), toByteOffset: 12, as: Int32.self)
            c.storeBytes(of: fd, toByteOffset: 16, as: Int32.self)
        }
        var byte: UInt8 = 0
        let n = control.withUnsafeMutableBytes { c in
            withUnsafeMutablePointer(to: &byte) { b in
                var iov = iovec(iov_base: b, iov_len: 1)
                return withUnsafeMutablePointer(to: &iov) { iovp in
                    var msg = msghdr()
                    msg.msg_iov = iovp; msg.msg_iovlen = 1
                    msg.msg_control = c.baseAddress; msg.msg_controllen = c.count
                    return sendmsg(ours, &msg, Int32(MSG_DONTWAIT))
                }
            }
        }
        if n != 1 { throw CheckpointError.errno("send fd \(fd) to a restored task") }
    }
}

extension RestoredProcess {
    /// The cgroup namespace the thread that cloned the root made (CgroupsDump) is owned by
    /// our user namespace: the root makes its own again from inside, rooted where setUp put
    /// it, at its dumped cgroups, which the dump checked are its namespace's root.
    func ownCgroupNamespace() throws {
        guard userNamespace != nil,
              try NamespaceSet.inode(of: .cgroup, pid: hostPid) != NamespaceSet.inode(of: .cgroup, pid: getpid()) else { return }
        try call("unshare(CLONE_NEWCGROUP) inside the user namespace", SyscallNumber.unshare, CloneFlags.newCgroup.rawValue)
    }

    func enter(_ userns: UserNamespace?, socket: RestorerSocket?) {
        userNamespace = userns
        restorerSocket = socket
    }

    /// pidfd_getfd's work through the socket at `channel` in this process: our fd `ours`
    /// arrives as the lowest free fd, close-on-exec like pidfd_getfd's.
    func receiveFd(_ ours: Int32, through socket: RestorerSocket, channel: Int32) throws -> Int32 {
        try socket.send(ours)
        // Far above the offsets the callers use for their own arguments.
        let base: UInt64 = 32768
        let byte = data + base + 64, iov = data + base + 80, control = data + base + 96
        let msg = try put(bytes(UInt64(0)) + bytes(UInt64(0)) + bytes(iov) + bytes(UInt64(1)) + bytes(control) + bytes(UInt64(24)) + bytes(UInt64(0)), at: base)
        _ = try put(bytes(byte) + bytes(UInt64(1)), at: base + 80)
        _ = try put([UInt8](repeating: 0, count: 24), at: base + 96)
        try call("recvmsg of fd \(ours) from the restorer", SyscallNumber.recvmsg, UInt64(channel), msg, UInt64(MSG_CMSG_CLOEXEC))
        let level = try readValue(control + 8, as: Int32.self), type = try readValue(control + 12, as: Int32.self)
        guard level == SOL_SOCKET, type == Int32(SCM_RIGHTS) else {
            throw CheckpointError(.invalidState, "pid \(pid): fd \(ours) from the restorer arrived without its SCM_RIGHTS")
        }
        return try readValue(control + 16, as: Int32.self)
    }
}
