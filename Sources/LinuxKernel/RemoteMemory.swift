import Foundation
import CShim

/// Another process's memory. Small accesses go through /proc/PID/mem, which ignores page
/// protections the way a debugger does; bulk copies use process_vm_readv/writev.
public final class RemoteMemory {
    public let pid: Int32
    private let fd: Int32

    public init(pid: Int32) throws {
        self.pid = pid
        fd = open("/proc/\(pid)/mem", O_RDWR | O_CLOEXEC)
        if fd < 0 { throw CheckpointError.errno("open /proc/\(pid)/mem") }
    }

    deinit { close(fd) }

    public func read(_ address: UInt64, count: Int) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(Int64(bitPattern: address))) }
        if n != count { throw CheckpointError.errno("read \(count) bytes at \(address.hex) in pid \(pid)") }
        return buf
    }

    public func write(_ address: UInt64, _ bytes: [UInt8]) throws {
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, bytes.count, off_t(Int64(bitPattern: address))) }
        if n != bytes.count { throw CheckpointError.errno("write \(bytes.count) bytes at \(address.hex) in pid \(pid)") }
    }

    public func readValue<T>(_ address: UInt64, as: T.Type) throws -> T {
        let bytes = try read(address, count: MemoryLayout<T>.size)
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }

    /// Copies remote ranges into local memory, batching up to IOV_MAX ranges per call.
    /// `ranges` are (remote address, length); `local` receives them back to back.
    public func copyOut(_ ranges: [(UInt64, Int)], into local: UnsafeMutableRawPointer) throws {
        try transfer(ranges, local: local, write: false)
    }

    /// Copies local memory (back to back) into remote ranges.
    public func copyIn(_ ranges: [(UInt64, Int)], from local: UnsafeRawPointer) throws {
        try transfer(ranges, local: UnsafeMutableRawPointer(mutating: local), write: true)
    }

    private func transfer(_ ranges: [(UInt64, Int)], local: UnsafeMutableRawPointer, write: Bool) throws {
        var offset = 0
        var index = 0
        while index < ranges.count {
            let batch = ranges[index..<min(index + 1024, ranges.count)]
            var remote = batch.map { iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt($0.0)), iov_len: $0.1) }
            let total = batch.reduce(0) { $0 + $1.1 }
            var done = 0
            // A partial transfer stops at a range boundary or inside one; resume from there.
            while done < total {
                var skip = done
                var firstRange = 0
                while skip >= remote[firstRange].iov_len { skip -= remote[firstRange].iov_len; firstRange += 1 }
                var rest = Array(remote[firstRange...])
                rest[0].iov_base = rest[0].iov_base! + skip
                rest[0].iov_len -= skip
                var localVec = iovec(iov_base: local + offset + done, iov_len: total - done)
                let n = rest.withUnsafeMutableBufferPointer { r in
                    write ? oc_process_vm_writev(pid, &localVec, 1, r.baseAddress, UInt(r.count))
                          : oc_process_vm_readv(pid, &localVec, 1, r.baseAddress, UInt(r.count))
                }
                if n <= 0 {
                    let first = UInt64(UInt(bitPattern: rest[0].iov_base)).hex
                    throw CheckpointError.errno("\(write ? "process_vm_writev" : "process_vm_readv") at \(first) in pid \(pid)")
                }
                done += n
            }
            remote.removeAll()
            offset += total
            index += batch.count
        }
    }
}
