import Foundation
import LinuxKernel
import Images

/// The state of an established TCP connection that the kernel's repair mode exposes
/// (TCP_REPAIR_QUEUE + TCP_QUEUE_SEQ, TCP_REPAIR_OPTIONS, TCP_REPAIR_WINDOW,
/// TCP_TIMESTAMP), as tcp_stream_entry holds it, with the bytes of both queues.
///
///   inq_len = rcv_nxt - copied_seq (SIOCINQ),  inq_seq = rcv_nxt
///   outq_len = write_seq - snd_una (SIOCOUTQ), outq_seq = write_seq
struct TcpRepairState {
    typealias O = SocketOption
    static let recvQueue: Int32 = 1, sendQueue: Int32 = 2
    static let optTimestamps: UInt32 = 1, optSack: UInt32 = 2, optWscale: UInt32 = 4
    static let siocinq = 0x541B, siocoutq = 0x5411, siocoutqnsd = 0x894B

    var entry: TcpStreamEntry
    var inq: Data
    var outq: Data

    /// Reads a socket already in repair mode, in `state` (which it must not have left).
    /// A FIN in the send queue takes a sequence number but holds no data: it is not
    /// counted in the queue lengths, as soccr does (the sequence numbers keep it).
    static func read(_ fd: Int32, state: UInt32, owner: String) throws -> TcpRepairState {
        let s = SocketOption(fd: fd, owner: owner)
        let info = try s.bytes(O.solTCP, O.tcpInfo, 8, "TCP_INFO")
        guard UInt32(info[0]) == state else {
            throw CheckpointError(.invalidState, "\(owner): left the state \(SocketState.names[state] ?? "\(state)") while it was dumped (now \(SocketState.names[UInt32(info[0])] ?? "\(info[0])"))")
        }
        var e = TcpStreamEntry()
        let inqLen = try ioctlInt(fd, siocinq, "SIOCINQ", owner)
        var outqLen = try ioctlInt(fd, siocoutq, "SIOCOUTQ", owner)
        e.unsqLen = try ioctlInt(fd, siocoutqnsd, "SIOCOUTQNSD", owner)
        if FinState.sentFirst.contains(state) || FinState.sentSecond.contains(state) {
            if outqLen > 0 { outqLen -= 1 }
            if e.unsqLen > 0 { e.unsqLen -= 1 }
        }
        let (inSeq, inq) = try queue(s, recvQueue, length: inqLen)
        let (outSeq, outq) = try queue(s, sendQueue, length: outqLen)
        e.inqLen = inqLen; e.inqSeq = inSeq
        e.outqLen = outqLen; e.outqSeq = outSeq
        e.mssClamp = UInt32(bitPattern: try s.int(O.solTCP, O.tcpMaxseg, "TCP_MAXSEG"))
        e.optMask = UInt32(info[5])
        e.sndWscale = 0
        if e.optMask & optWscale != 0 {
            e.sndWscale = UInt32(info[6] & 0xf)
            e.rcvWscale = UInt32(info[6] >> 4)
        }
        if e.optMask & optTimestamps != 0 {
            e.timestamp = UInt32(bitPattern: try s.int(O.solTCP, O.tcpTimestamp, "TCP_TIMESTAMP"))
        }
        let w = try s.bytes(O.solTCP, O.tcpRepairWindow, 20, "TCP_REPAIR_WINDOW")
        if w.count == 20 {
            let v = (0..<5).map { i in w.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self) } }
            e.sndWl1 = v[0]; e.sndWnd = v[1]; e.maxWindow = v[2]; e.rcvWnd = v[3]; e.rcvWup = v[4]
        }
        if try s.bool(O.solTCP, O.tcpNodelay, "TCP_NODELAY") { e.nodelay = true }
        if try s.bool(O.solTCP, O.tcpCork, "TCP_CORK") { e.cork = true }
        return TcpRepairState(entry: e, inq: inq, outq: outq)
    }

    /// The queue's sequence number and its bytes, peeked without consuming them.
    private static func queue(_ s: SocketOption, _ q: Int32, length: UInt32) throws -> (UInt32, Data) {
        let name = q == recvQueue ? "receive queue" : "send queue"
        try s.set(O.solTCP, O.tcpRepairQueue, q, "TCP_REPAIR_QUEUE (\(name))")
        let seq = UInt32(bitPattern: try s.int(O.solTCP, O.tcpQueueSeq, "TCP_QUEUE_SEQ (\(name))"))
        guard length > 0 else { return (seq, Data()) }
        // One byte more than announced proves that the queue holds exactly that much.
        var buf = [UInt8](repeating: 0, count: Int(length) + 1)
        let n = recv(s.fd, &buf, buf.count, Int32(MSG_PEEK | MSG_DONTWAIT))
        if n < 0 { throw CheckpointError.errno("\(s.owner): read the \(name) (\(length) bytes)") }
        guard n == Int(length) else {
            throw CheckpointError(.kernel, "\(s.owner): the \(name) holds \(n) bytes, the kernel announced \(length)")
        }
        return (seq, Data(buf[0..<n]))
    }

    private static func ioctlInt(_ fd: Int32, _ req: Int, _ what: String, _ owner: String) throws -> UInt32 {
        var v: Int32 = 0
        if ioctl(fd, UInt(req), &v) != 0 { throw CheckpointError.errno("\(owner): ioctl \(what)") }
        return UInt32(bitPattern: v)
    }

    // MARK: - Restore

    /// rcv_nxt before the peer's FIN, if one was received.
    private func receivedUpTo(_ state: UInt32) -> UInt32 {
        entry.inqSeq &- (FinState.receivedFirst.contains(state) || FinState.receivedSecond.contains(state) ? 1 : 0)
    }

    /// snd_una: where the send queue starts (our FIN, if sent, is after it).
    private func unacknowledged(_ state: UInt32) -> UInt32 {
        let fin: UInt32 = FinState.sentFirst.contains(state) || FinState.sentSecond.contains(state) ? 1 : 0
        return entry.outqSeq &- fin &- entry.outqLen
    }

    /// Before bind and connect: where both queues start (a SYN not yet answered takes
    /// one sequence number before the first byte).
    func restoreSequences(_ s: SocketOption, state: UInt32) throws {
        try setQueue(s, Self.recvQueue, seq: receivedUpTo(state) &- entry.inqLen)
        try setQueue(s, Self.sendQueue, seq: unacknowledged(state) &- (state == FinState.synSent ? 1 : 0))
    }

    /// After connect (still in repair mode, nothing is sent): options, queues, window, and
    /// the FINs of a half-closed connection: ours by shutdown(2), the peer's as a forged
    /// segment, in the order the state was reached (soccr's libsoccr_restore).
    func restoreConnection(_ s: SocketOption, state: UInt32, peerSegment: (UInt8, UInt32, UInt32, UInt16) throws -> Void) throws {
        if state != FinState.synSent { try restoreOptions(s) }
        try restoreQueues(s)
        if entry.hasSndWnd && state != FinState.synSent {
            let fin: UInt32 = FinState.receivedFirst.contains(state) || FinState.receivedSecond.contains(state) ? 1 : 0
            let w = [entry.sndWl1, entry.sndWnd, entry.maxWindow, entry.rcvWnd &+ fin, entry.rcvWup &- fin].flatMap { bytes($0) }
            try s.set(O.solTCP, O.tcpRepairWindow, bytes: w, "TCP_REPAIR_WINDOW")
        }
        if entry.nodelay { try s.set(O.solTCP, O.tcpNodelay, 1, "TCP_NODELAY") }
        let window = UInt16(clamping: entry.sndWnd >> (entry.optMask & Self.optWscale != 0 ? entry.sndWscale : 0))
        let finAcked = FinState.sentAcked.contains(state)
        if FinState.sentFirst.contains(state) { try shutdownInSendQueue(s, acked: finAcked) }
        if FinState.receivedFirst.contains(state) || FinState.receivedSecond.contains(state) {
            try peerSegment(TcpSegment.fin | TcpSegment.ack, receivedUpTo(state), unacknowledged(state), window)
        }
        if FinState.sentSecond.contains(state) { try shutdownInSendQueue(s, acked: finAcked) }
        if finAcked {
            try peerSegment(TcpSegment.ack, entry.inqSeq, unacknowledged(state) &+ 1, window)
        }
        if entry.cork { try s.set(O.solTCP, O.tcpCork, 1, "TCP_CORK") }
    }

    /// Our FIN, as sent (in the send queue's repair mode) when the peer has acknowledged
    /// it, else queued to go out.
    private func shutdownInSendQueue(_ s: SocketOption, acked: Bool) throws {
        try s.set(O.solTCP, O.tcpRepairQueue, acked ? Self.sendQueue : 0, "TCP_REPAIR_QUEUE")
        if Glibc.shutdown(s.fd, Int32(SHUT_WR)) != 0 { throw CheckpointError.errno("\(s.owner): shutdown for the FIN it had sent") }
        try s.set(O.solTCP, O.tcpRepairQueue, 0, "TCP_REPAIR_QUEUE (none)")
    }

    private func restoreOptions(_ s: SocketOption) throws {
        var opts: [UInt8] = []
        func add(_ code: UInt32, _ val: UInt32) { opts += bytes(code) + bytes(val) }
        if entry.optMask & Self.optSack != 0 { add(4 /* TCPOPT_SACK_PERM */, 0) }
        if entry.optMask & Self.optWscale != 0 { add(3 /* TCPOPT_WINDOW */, entry.sndWscale | entry.rcvWscale << 16) }
        if entry.optMask & Self.optTimestamps != 0 { add(8 /* TCPOPT_TIMESTAMP */, 0) }
        add(2 /* TCPOPT_MAXSEG */, entry.mssClamp)
        try s.set(O.solTCP, O.tcpRepairOptions, bytes: opts, "TCP_REPAIR_OPTIONS")
        if entry.hasTimestamp { try s.set(O.solTCP, O.tcpTimestamp, Int32(bitPattern: entry.timestamp), "TCP_TIMESTAMP") }
    }

    private func restoreQueues(_ s: SocketOption) throws {
        // Room for both queues: the final buffer sizes are set with the other options.
        try s.set(O.solSocket, O.soSndbufforce, Int32(clamping: outq.count + 65536), "SO_SNDBUFFORCE")
        try s.set(O.solSocket, O.soRcvbufforce, Int32(clamping: inq.count + 65536), "SO_RCVBUFFORCE")
        if !inq.isEmpty {
            try s.set(O.solTCP, O.tcpRepairQueue, Self.recvQueue, "TCP_REPAIR_QUEUE (receive queue)")
            try send(s, inq, "receive queue")
        }
        // Sent but unacknowledged data goes back in repair mode; data never sent goes out
        // as usual (into the network lock, then retransmitted).
        let unsent = Int(min(entry.unsqLen, entry.outqLen))
        let sent = outq.count - unsent
        if sent > 0 {
            try s.set(O.solTCP, O.tcpRepairQueue, Self.sendQueue, "TCP_REPAIR_QUEUE (send queue)")
            try send(s, outq.prefix(sent), "send queue")
        }
        if unsent > 0 {
            try s.set(O.solTCP, O.tcpRepair, -1 /* TCP_REPAIR_OFF_NO_WP */, "TCP_REPAIR off")
            try send(s, outq.suffix(unsent), "unsent part of the send queue")
            try s.set(O.solTCP, O.tcpRepair, 1, "TCP_REPAIR")
        }
    }

    private func setQueue(_ s: SocketOption, _ q: Int32, seq: UInt32) throws {
        try s.set(O.solTCP, O.tcpRepairQueue, q, "TCP_REPAIR_QUEUE")
        try s.set(O.solTCP, O.tcpQueueSeq, Int32(bitPattern: seq), "TCP_QUEUE_SEQ")
    }

    /// send(2) in chunks; a chunk the kernel refuses (a linear skb too large) is halved.
    private func send(_ s: SocketOption, _ data: Data, _ what: String) throws {
        var off = data.startIndex
        var chunk = data.count
        while off < data.endIndex {
            let n = min(chunk, data.endIndex - off)
            let sent = Syscall.valueOrErrno { data[off..<off + n].withUnsafeBytes { Glibc.send(s.fd, $0.baseAddress, n, Int32(MSG_DONTWAIT)) } }
            guard case .success(let r) = sent, r > 0 else {
                if chunk > 1024 { chunk /= 2; continue }
                if case .failure(let err) = sent { throw CheckpointError.errno("\(s.owner): refill the \(what) (\(data.count) bytes)", err) }
                throw CheckpointError.errno("\(s.owner): refill the \(what) (\(data.count) bytes)")
            }
            off += r
        }
    }
}

/// Where the FINs of a half-closed connection sit, by TCP state (soccr's SNDQ_*/RCVQ_*):
/// ours in the send queue first or after the peer's, acknowledged or not; the peer's
/// received first or second.
enum FinState {
    static let synSent: UInt32 = 2
    static let sentFirst: Set<UInt32> = [4, 5, 11]       // FIN_WAIT1, FIN_WAIT2, CLOSING
    static let sentSecond: Set<UInt32> = [9, 7]          // LAST_ACK, CLOSE
    static let sentAcked: Set<UInt32> = [5, 7]           // FIN_WAIT2, CLOSE
    static let receivedFirst: Set<UInt32> = [8, 9, 7]    // CLOSE_WAIT, LAST_ACK, CLOSE
    static let receivedSecond: Set<UInt32> = [11]        // CLOSING
    /// The states a connection can be dumped in through repair mode.
    static let repairable: Set<UInt32> = [1, 2, 4, 5, 8, 9, 11]
}
