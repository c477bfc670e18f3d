import Foundation
import LinuxKernel
import Images

/// Where a page server listens (CRIU's --address/--port, criu_page_server_info).
public struct PageServerAddress: CustomStringConvertible, Sendable {
    public var host: String?
    public var port: UInt16
    public init(host: String?, port: UInt16) { self.host = host; self.port = port }
    public var description: String { "\(host ?? "*"):\(port)" }
}

/// CRIU's page_xfer wire format (criu/page-xfer.c): every command is a struct
/// page_server_iov { u32 cmd; u64 nr_pages; u64 vaddr; u64 dst_id; } in host order with
/// its C padding (32 bytes); PE_* flags ride in the command's upper 16 bits.
struct PageServerCommand: Equatable {
    static let size = 32
    /// iovecs per sendmsg (the kernel's UIO_MAXIOV).
    static let maxIovecs = 1024
    static let add = UInt32(1), hole = UInt32(2), open = UInt32(3), open2 = UInt32(4), parent = UInt32(5)
    static let addWithFlags = UInt32(6), get = UInt32(7), close = UInt32(0x1023), forceClose = UInt32(0x1024)

    var cmd: UInt32
    var nrPages: UInt64 = 0
    var vaddr: UInt64 = 0
    var dstID: UInt64 = 0

    init(_ cmd: UInt32, flags: UInt32 = 0, nrPages: UInt64 = 0, vaddr: UInt64 = 0, dstID: UInt64 = 0) {
        self.cmd = flags << 16 | cmd
        self.nrPages = nrPages; self.vaddr = vaddr; self.dstID = dstID
    }

    var command: UInt32 { cmd & 0xffff }
    var flags: UInt32 { cmd >> 16 }

    /// The 32 bytes as four words: cmd and its padding, nr_pages, vaddr, dst_id.
    var words: (UInt64, UInt64, UInt64, UInt64) { (UInt64(cmd), nrPages, vaddr, dstID) }

    init(words w: (UInt64, UInt64, UInt64, UInt64)) {
        cmd = UInt32(truncatingIfNeeded: w.0); nrPages = w.1; vaddr = w.2; dstID = w.3
    }

    /// dst_id: the pagemap's id above 8 bits of type (1: a task's, 2: shared memory).
    static func destination(_ pagemap: ImageName) throws -> UInt64 {
        let id = pagemap.id ?? 0
        if pagemap.kind == .pagemap { return id << 8 | 1 }
        if pagemap.kind == .pagemapShmem { return id << 8 | 2 }
        throw CheckpointError(.invalidArgument, "\(pagemap.fileName) is not a pagemap")
    }

    /// The pagemap a dst_id names, with the type numbers older CRIUs sent (decode_pm).
    static func pagemap(_ dstID: UInt64) -> ImageName? {
        let id = dstID >> 8
        switch dstID & 0xff {
        case 1, 10, 11, 16, 17: return .pagemap(id)
        case 2, 27, 28, 29, 32, 33, 34: return .pagemapShmem(id)
        default: return nil
        }
    }
}

/// Whole sends and receives on a connected socket, failures named for `peer`.
struct PageServerSocket {
    let fd: Int32
    let peer: String

    /// Sends every byte of `iovecs` (sendmsg, MSG_NOSIGNAL: a peer gone is an error, not SIGPIPE).
    func send(_ iovecs: inout [iovec], what: @autoclosure () -> String) throws {
        var first = 0
        while first < iovecs.count {
            let n = try iovecs.withUnsafeMutableBufferPointer { buf in
                var msg = msghdr()
                msg.msg_iov = buf.baseAddress! + first
                msg.msg_iovlen = min(buf.count - first, PageServerCommand.maxIovecs)
                return try Syscall.retrying("\(peer): send \(what())") { sendmsg(fd, &msg, Int32(MSG_NOSIGNAL)) }
            }
            var left = n
            while first < iovecs.count && left >= iovecs[first].iov_len { left -= iovecs[first].iov_len; first += 1 }
            if left > 0 {
                iovecs[first].iov_base += left
                iovecs[first].iov_len -= left
            }
        }
    }

    /// The bytes of one value: a command's words, an answer byte or status word.
    func send<T>(bytesOf value: T, what: @autoclosure () -> String) throws {
        var v = value
        try withUnsafeMutableBytes(of: &v) { raw in
            var iov = [iovec(iov_base: raw.baseAddress, iov_len: raw.count)]
            try send(&iov, what: what())
        }
    }

    func send(_ command: PageServerCommand, what: @autoclosure () -> String) throws {
        try send(bytesOf: command.words, what: what())
    }

    /// Fills `count` bytes at `buffer`; false when the peer closed before the first byte.
    func receive(_ buffer: UnsafeMutableRawPointer, _ count: Int, what: @autoclosure () -> String) throws -> Bool {
        var done = 0
        while done < count {
            let n = try Syscall.retrying("\(peer): receive \(what())") { recv(fd, buffer + done, count - done, Int32(MSG_WAITALL)) }
            if n == 0 {
                if done == 0 { return false }
                throw CheckpointError(.kernel, "\(peer): connection closed in the middle of \(what())", errno: .EPIPE)
            }
            done += n
        }
        return true
    }

    func receive(what: @autoclosure () -> String) throws -> PageServerCommand? {
        var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let got = try withUnsafeMutableBytes(of: &w) { try receive($0.baseAddress!, $0.count, what: what()) }
        return got ? PageServerCommand(words: w) : nil
    }

    /// CLOSE, then the server's status word; the connection is closed either way.
    func sendClose() throws -> Int32 {
        defer { Glibc.close(fd) }
        try send(PageServerCommand(PageServerCommand.close), what: "CLOSE")
        var status: Int32 = -1
        try reply(&status, 4, what: "CLOSE")
        return status
    }

    /// A reply the peer must send (has_parent byte, status word): its closing first is an error.
    func reply(_ buffer: UnsafeMutableRawPointer, _ count: Int, what: @autoclosure () -> String) throws {
        if try !receive(buffer, count, what: what()) {
            throw CheckpointError(.kernel, "\(peer): the page server closed the connection instead of answering \(what())", errno: .EPIPE)
        }
    }
}

extension PagemapEntry {
    /// An entry as CRIU's page_xfer writes it: nr_pages and flags (in_parent is the
    /// pre-1.0 spelling of PE_PARENT and stays unset).
    init(vaddr: UInt64, nrPages: UInt64, flags: UInt32) {
        self.init()
        self.vaddr = vaddr; self.nrPages = nrPages; self.flags = flags
        compatNrPages = UInt32(truncatingIfNeeded: min(nrPages, UInt64(UInt32.max)))
    }
}
