/// The lines the kernel adds to fdinfo for anonymous-inode files: eventfd, signalfd,
/// timerfd, epoll, inotify, fanotify and pidfd (fs/eventfd.c, fs/signalfd.c,
/// fs/timerfd.c, fs/eventpoll.c, fs/notify/fdinfo.c, kernel/pid.c).
extension FdInfo {
    /// eventfd-count (hex).
    public var eventfdCount: UInt64? { fields["eventfd-count"].flatMap { UInt64($0, radix: 16) } }
    /// eventfd-semaphore (Linux 6.6+); absent means not known, taken as false.
    public var eventfdSemaphore: Bool { fields["eventfd-semaphore"] == "1" }

    /// signalfd's sigmask: the signals it accepts, bit N-1 for signal N (hex).
    public var signalMask: UInt64? { fields["sigmask"].flatMap { UInt64($0, radix: 16) } }

    public struct Timer: Equatable, Sendable {
        public var clockID: Int32
        public var ticks: UInt64
        /// TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET (octal in the file).
        public var settimeFlags: UInt32
        /// Time left until the next expiry (relative, whatever the settime flags).
        public var value: (sec: UInt64, nsec: UInt64)
        public var interval: (sec: UInt64, nsec: UInt64)

        public static func == (a: Timer, b: Timer) -> Bool {
            a.clockID == b.clockID && a.ticks == b.ticks && a.settimeFlags == b.settimeFlags
                && a.value == b.value && a.interval == b.interval
        }
    }

    public var timer: Timer? {
        guard let clock = fields["clockid"].flatMap({ Int32($0) }), let ticks = fields["ticks"].flatMap({ UInt64($0) }),
              let flags = fields["settime flags"].flatMap({ UInt32($0, radix: 8) }),
              let value = fields["it_value"].flatMap(Self.pair), let interval = fields["it_interval"].flatMap(Self.pair)
        else { return nil }
        return Timer(clockID: clock, ticks: ticks, settimeFlags: flags, value: value, interval: interval)
    }

    /// "(2, 999996070)"
    private static func pair(_ s: String) -> (sec: UInt64, nsec: UInt64)? {
        let parts = s.filter { $0 != "(" && $0 != ")" && $0 != " " }.split(separator: ",")
        guard parts.count == 2, let a = UInt64(parts[0]), let b = UInt64(parts[1]) else { return nil }
        return (a, b)
    }

    public struct EpollTarget: Equatable, Sendable {
        public var fd: Int32
        public var events: UInt32
        public var data: UInt64
        public var pos: UInt64
        public var ino: UInt64
        public var sdev: UInt32
    }

    /// One "tfd:" line per registered file.
    public var epollTargets: [EpollTarget] {
        get throws {
            try lines.filter { $0.hasPrefix("tfd:") }.map { line in
                let a = Self.attributes(line[...])
                guard let fd = a["tfd"].flatMap({ Int32($0) }), let events = a["events"].flatMap({ UInt32($0, radix: 16) }),
                      let data = a["data"].flatMap({ UInt64($0, radix: 16) }) else {
                    throw ProcFSError(path: "fdinfo", reason: "bad epoll line '\(line)'")
                }
                return EpollTarget(fd: fd, events: events, data: data, pos: a["pos"].flatMap { UInt64($0) } ?? 0,
                                   ino: a["ino"].flatMap { UInt64($0, radix: 16) } ?? 0,
                                   sdev: a["sdev"].flatMap { UInt32($0, radix: 16) } ?? 0)
            }
        }
    }

    /// An inotify watch or a fanotify mark. The kernel prints every number in hex.
    public struct NotifyMark: Equatable, Sendable {
        /// inotify only.
        public var wd: Int32?
        /// Inode marks: the inode, its filesystem and its file handle.
        public var ino: UInt64?
        public var sdev: UInt32?
        public var handleType: Int32?
        public var handle: [UInt8]
        /// fanotify mount marks.
        public var mountID: Int32?
        /// fanotify: FAN_MARK_* flags of the mark.
        public var markFlags: UInt32
        public var mask: UInt32
        public var ignoredMask: UInt32
    }

    public var inotifyWatches: [NotifyMark] {
        get throws { try marks(prefix: "inotify ") }
    }

    /// "fanotify flags:X event-flags:Y": fanotify_init's flags and event_f_flags.
    public var fanotifyFlags: (flags: UInt32, eventFlags: UInt32)? {
        guard let line = lines.first(where: { $0.hasPrefix("fanotify flags:") }) else { return nil }
        let a = Self.attributes(line.dropFirst("fanotify ".count))
        guard let f = a["flags"].flatMap({ UInt32($0, radix: 16) }), let e = a["event-flags"].flatMap({ UInt32($0, radix: 16) }) else { return nil }
        return (f, e)
    }

    public var fanotifyMarks: [NotifyMark] {
        get throws { try marks(prefix: "fanotify ") }
    }

    private func marks(prefix: String) throws -> [NotifyMark] {
        try lines.filter { $0.hasPrefix(prefix) && !$0.hasPrefix("fanotify flags:") }.map { line in
            let a = Self.attributes(line.dropFirst(prefix.count))
            func hex32(_ k: String) -> UInt32? { a[k].flatMap { UInt32($0, radix: 16) } }
            guard let mask = hex32("mask") else { throw ProcFSError(path: "fdinfo", reason: "bad mark line '\(line)'") }
            var handle: [UInt8] = []
            if let h = a["f_handle"] {
                var i = h.startIndex
                while i < h.endIndex, let j = h.index(i, offsetBy: 2, limitedBy: h.endIndex), let b = UInt8(h[i..<j], radix: 16) {
                    handle.append(b)
                    i = j
                }
            }
            return NotifyMark(wd: a["wd"].flatMap { Int32($0, radix: 16) }, ino: a["ino"].flatMap { UInt64($0, radix: 16) },
                              sdev: hex32("sdev"), handleType: a["fhandle-type"].flatMap { Int32($0, radix: 16) },
                              handle: handle, mountID: a["mnt_id"].flatMap { Int32($0, radix: 16) },
                              markFlags: hex32("mflags") ?? 0, mask: mask, ignoredMask: hex32("ignored_mask") ?? 0)
        }
    }

    /// A pidfd's process as the reader's pid namespace sees it; -1 once it was reaped.
    public var pidfdPid: Int32? { fields["Pid"].flatMap { Int32($0) } }

    /// "key:value key: value ..." pairs of one line (a key's value may follow after spaces).
    static func attributes(_ line: Substring) -> [String: String] {
        var out: [String: String] = [:]
        var pendingKey: String?
        for token in ProcLines.fields(line) {
            if let key = pendingKey {
                out[key] = String(token)
                pendingKey = nil
            } else if let colon = token.firstIndex(of: ":") {
                let key = String(token[..<colon]), value = token[token.index(after: colon)...]
                if value.isEmpty { pendingKey = key } else { out[key] = String(value) }
            }
        }
        return out
    }
}
