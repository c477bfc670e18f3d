import Foundation
import LinuxKernel
import CShim

/// bpf(2) for the map commands the dump and restore use, through the raw syscall: a
/// dozen fields at fixed offsets of bpf_attr, where libbpf would add a library (and its
/// API changes: CRIU keeps two code paths for bpf_create_map_xattr and bpf_map_create).
enum Bpf {
    static let syscallNumber = 321
    static let mapCreate = 0, mapLookupElem = 1, mapUpdateElem = 2, mapGetNextKey = 4
    static let progGetNextID = 11, progGetFdByID = 13, mapGetFdByID = 14, objGetInfoByFd = 15
    static let mapFreeze = 22, mapLookupBatch = 24, mapUpdateBatch = 26
    /// open_flags of BPF_MAP_GET_FD_BY_ID: the access a description has.
    static let readOnly: UInt32 = 1 << 3, writeOnly: UInt32 = 1 << 4
    static let mmapable: UInt32 = 1 << 10
    /// The kernel's ENOTSUPP (524): a command the map type does not implement.
    static let notSupported = Errno(524)

    /// union bpf_attr, zeroed and filled by byte offset (offsets from linux/bpf.h).
    struct Attr {
        var bytes = [UInt8](repeating: 0, count: 144)
        mutating func set<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            bytes.withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self) }
        }
        func get<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
            bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        }
    }

    static func result(_ command: Int, _ attr: inout Attr) -> Result<Int, Errno> {
        attr.bytes.withUnsafeMutableBytes {
            Syscall.result(syscallNumber, command, Int(bitPattern: $0.baseAddress), $0.count)
        }
    }

    @discardableResult
    static func call(_ what: @autoclosure () -> String, _ command: Int, _ attr: inout Attr) throws -> Int {
        try result(command, &attr).get(what())
    }

    static func address(_ p: UnsafeMutableRawBufferPointer) -> UInt64 { UInt64(UInt(bitPattern: p.baseAddress)) }
}

/// A BPF map as bpf_map_info describes it.
struct BpfMapInfo {
    var type: UInt32 = 0, id: UInt32 = 0, keySize: UInt32 = 0, valueSize: UInt32 = 0
    var maxEntries: UInt32 = 0, flags: UInt32 = 0, name = "", ifindex: UInt32 = 0, btfID: UInt32 = 0

    /// Map types whose whole state is their entries, by number, with their names.
    static let carried: [UInt32: String] = [1: "hash", 2: "array", 5: "percpu hash", 6: "percpu array", 9: "LRU hash"]
    static let typeNames: [UInt32: String] = [3: "prog array", 4: "perf event array", 7: "stack trace", 8: "cgroup array",
        10: "LRU percpu hash", 11: "LPM trie", 12: "array of maps", 13: "hash of maps", 14: "devmap", 15: "sockmap",
        16: "cpumap", 17: "xskmap", 18: "sockhash", 19: "cgroup storage", 20: "reuseport sockarray",
        21: "percpu cgroup storage", 22: "queue", 23: "stack", 24: "sk storage", 25: "devmap hash", 26: "struct ops",
        27: "ringbuf", 28: "inode storage", 29: "task storage", 30: "bloom filter", 31: "user ringbuf",
        32: "cgroup storage", 33: "arena"]
    var typeName: String { Self.carried[type] ?? Self.typeNames[type] ?? "type \(type)" }
    var isPerCPU: Bool { type == 5 || type == 6 }

    /// BPF_OBJ_GET_INFO_BY_FD on our own fd of the map.
    static func of(_ fd: Int32, _ what: String) throws -> BpfMapInfo {
        var raw = [UInt8](repeating: 0, count: 88)
        try raw.withUnsafeMutableBytes { buf in
            var attr = Bpf.Attr()
            attr.set(UInt32(bitPattern: fd), at: 0); attr.set(UInt32(buf.count), at: 4); attr.set(Bpf.address(buf), at: 8)
            try Bpf.call("BPF_OBJ_GET_INFO_BY_FD of \(what)", Bpf.objGetInfoByFd, &attr)
        }
        var a = Bpf.Attr(); a.bytes.replaceSubrange(0..<88, with: raw)
        var i = BpfMapInfo()
        i.type = a.get(UInt32.self, at: 0); i.id = a.get(UInt32.self, at: 4); i.keySize = a.get(UInt32.self, at: 8)
        i.valueSize = a.get(UInt32.self, at: 12); i.maxEntries = a.get(UInt32.self, at: 16); i.flags = a.get(UInt32.self, at: 20)
        i.name = String(decoding: raw[24..<40].prefix { $0 != 0 }, as: UTF8.self)
        i.ifindex = a.get(UInt32.self, at: 40); i.btfID = a.get(UInt32.self, at: 64)
        return i
    }

    /// The bytes of one value as the syscalls move them: a per-CPU map has one value per
    /// possible CPU, each rounded up to 8 bytes.
    func valueStride(cpus: Int) -> Int {
        isPerCPU ? (Int(valueSize) + 7) / 8 * 8 * cpus : Int(valueSize)
    }

    /// The possible CPUs (not the online ones: per-CPU values exist for each possible CPU).
    static func possibleCPUs() throws -> Int {
        let text = try String(contentsOfFile: "/sys/devices/system/cpu/possible", encoding: .utf8)
        return text.split(separator: ",").reduce(0) { n, range in
            let ends = range.split(separator: "-").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            return n + (ends.count == 2 ? ends[1] - ends[0] + 1 : 1)
        }
    }
}

/// A map's entries: `count` keys, then `count` values, as bpfmap-data.img holds them.
struct BpfMapEntries {
    var count = 0
    var keys = Data(), values = Data()
}
