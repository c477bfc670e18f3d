import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

/// POSIX message queues open in the tree (mq_open; the fd's link is /NAME on the mqueue
/// filesystem). files.img names each open description as an external file (CRIU's EXT
/// type, which CRIU leaves to plugins); mqueue.img (ours) holds the queue's attributes and,
/// once per queue, its messages with their priorities.
/// Messages can only be read by taking them off the queue: they are received in order
/// through a descriptor of our own (opened via /proc/PID/fd/N) and sent back at once in
/// the same order, which rebuilds the same queue (ordered by priority, then by arrival).
final class MqueueDump {
    private(set) var entries: [(entry: MqueueEntry, messages: [Data])] = []
    private var queuesRead: Set<UInt64> = []

    static let fsMagic = 0x1980_0202

    static func isMqueue(pid: Int32, fd: Int32) -> Bool {
        // statfs(2): struct statfs starts with f_type (a long).
        var buf = [Int](repeating: 0, count: 16)
        let r = "/proc/\(pid)/fd/\(fd)".withCString { p in buf.withUnsafeMutableBytes { Syscall.result(SyscallNumber.statfs, Int(bitPattern: p), Int(bitPattern: $0.baseAddress)) } }
        return r == .success(0) && buf[0] == fsMagic
    }

    /// The description behind `fd` of `pid` (file id `id`), as the ext_file_entry of files.img.
    func dump(pid: Int32, fd: Int32, link: String, st: stat, flags: UInt32, id: UInt32) throws -> ExtFileEntry {
        let what = "pid \(pid) fd \(fd) (mqueue \(link))"
        var name = link.hasPrefix("/") ? String(link.dropFirst()) : link
        let unlinked = st.st_nlink == 0
        if unlinked && name.hasSuffix(" (deleted)") { name = String(name.dropLast(" (deleted)".count)) }
        var e = MqueueEntry()
        e.id = id; e.queueID = UInt64(st.st_ino); e.name = name; e.unlinked = unlinked
        e.flags = flags; e.mode = st.st_mode & 0o7777; e.uid = st.st_uid; e.gid = st.st_gid
        let q = open("/proc/\(pid)/fd/\(fd)", O_RDWR | O_NONBLOCK | O_CLOEXEC)
        if q < 0 { throw CheckpointError.errno("open \(what)") }
        defer { close(q) }
        // Reading the file tells the notification state: QSIZE:n NOTIFY:n SIGNO:n NOTIFY_PID:n.
        var text = [UInt8](repeating: 0, count: 256)
        let n = Glibc.read(q, &text, text.count)
        let state = String(decoding: text.prefix(max(n, 0)), as: UTF8.self)
        if let r = state.range(of: "NOTIFY_PID:"), let p = Int(state[r.upperBound...].prefix { !$0.isWhitespace }), p != 0 {
            throw CheckpointError(.unsupported, "\(what): an mq_notify registration (pid \(p)) cannot be dumped")
        }
        var attr = [Int64](repeating: 0, count: 8)
        try attr.withUnsafeMutableBytes {
            try Syscall.raw("mq_getattr of \(what)", SyscallNumber.mqGetsetattr, Int(q), 0, Int(bitPattern: $0.baseAddress))
        }
        e.maxmsg = attr[1]; e.msgsize = attr[2]
        var messages: [Data] = []
        if queuesRead.insert(e.queueID).inserted {
            messages = try Self.takeAndPutBack(q, count: Int(attr[3]), size: Int(attr[2]), what: what, entry: &e)
        }
        entries.append((e, messages))
        var ext = ExtFileEntry()
        ext.id = id
        ext.fown = FownEntry.none
        return ext
    }

    private static func takeAndPutBack(_ q: Int32, count: Int, size: Int, what: String, entry e: inout MqueueEntry) throws -> [Data] {
        var messages: [Data] = []
        var buf = [UInt8](repeating: 0, count: max(size, 1))
        var prio: UInt32 = 0
        for _ in 0..<count {
            let received = buf.withUnsafeMutableBytes { b in withUnsafeMutablePointer(to: &prio) {
                Syscall.result(SyscallNumber.mqTimedreceive, Int(q), Int(bitPattern: b.baseAddress), b.count, Int(bitPattern: $0)) } }
            if received == .failure(.EAGAIN) { break }
            let got = try received.get("mq_receive from \(what)")
            messages.append(Data(buf[0..<got]))
            e.msgPrio.append(prio)
            e.msgLen.append(UInt32(got))
        }
        for (m, p) in zip(messages, e.msgPrio) {
            try m.withUnsafeBytes {
                _ = try Syscall.raw("mq_send back to \(what) (messages taken off it may be lost)", SyscallNumber.mqTimedsend, Int(q), Int(bitPattern: $0.baseAddress), m.count, Int(p))
            }
        }
        return messages
    }

    /// A tree with an ipc namespace of its own takes its queues along; queues no task has
    /// open are not dumped, so they refuse the dump. The namespace's queues are listed on
    /// a mqueue mount made in a private mount namespace of a thread that joined it.
    func checkUnopened(rootPid: Int32) throws {
        func ipc(_ pid: String) -> String { (try? ProcTree.link("/proc/\(pid)/ns/ipc")) ?? "" }
        guard ipc("\(rootPid)") != ipc("self") else { return }
        let names = try NamespaceJoin.run(in: rootPid, [.ipc]) { () throws -> [String] in
            try Syscall.raw("unshare(CLONE_NEWNS) to list the queues of pid \(rootPid)", SyscallNumber.unshare, CloneFlags.newNS.argument)
            guard Glibc.mount("none", "/", nil, UInt(MS_REC | MS_PRIVATE), nil) == 0,
                  Glibc.mount("mqueue", "/tmp", "mqueue", 0, nil) == 0 else {
                throw CheckpointError.errno("mount the mqueue filesystem of pid \(rootPid)'s ipc namespace")
            }
            return try FileManager.default.contentsOfDirectory(atPath: "/tmp")
        }
        let open = Set(entries.filter { !$0.entry.unlinked }.map(\.entry.name))
        if let name = names.sorted().first(where: { !open.contains($0) }) {
            throw CheckpointError(.unsupported, "the ipc namespace of pid \(rootPid) holds POSIX message queue /\(name), which no task of the tree has open (not supported yet)")
        }
    }

    func write(to images: ImageDirectory) throws {
        guard !entries.isEmpty else { return }
        let w = try images.writer(.mqueue)
        do {
            for (e, messages) in entries {
                try w.append(e)
                for m in messages { try w.appendRaw(m) }
            }
            try w.close()
        } catch let e as ImageError { throw e.checkpointError }
    }
}
