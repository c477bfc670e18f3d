import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

/// What BPF maps add to a dump: the entries of each map (bpfmap-data.img, CRIU's layout:
/// one entry, then the keys, then the values), once per map however many descriptions
/// name it.
final class BpfMapDump {
    private var dumped: Set<UInt32> = []
    private var data: [(BpfmapDataEntry, BpfMapEntries)] = []
    /// Map id -> a holder outside the tree (BpfMapHolders).
    private var holders: [UInt32: String]?

    func write(to images: ImageDirectory) throws {
        guard !data.isEmpty else { return }
        let w = try images.writer(.bpfmapData)
        for (e, d) in data { try w.append(e); try w.appendRaw(d.keys); try w.appendRaw(d.values) }
        try w.close()
    }

    fileprivate func record(_ info: BpfMapInfo, from fd: Int32, cpus: Int, what: String) throws {
        guard dumped.insert(info.id).inserted else { return }
        let entries = try BpfMapEntries.read(fd, info, stride: info.valueStride(cpus: cpus), what)
        guard entries.keys.count <= Int(UInt32.max), entries.values.count <= Int(UInt32.max) else {
            throw CheckpointError(.unsupported, "\(what) holds \(entries.values.count) bytes of values, beyond the 4 GiB bpfmap-data.img can say")
        }
        var e = BpfmapDataEntry()
        e.mapID = info.id; e.count = UInt32(entries.count)
        e.keysBytes = UInt32(entries.keys.count); e.valuesBytes = UInt32(entries.values.count)
        data.append((e, entries))
    }

    /// Who holds map `id` outside the tree (`tree`: host pids), asked once per dump.
    fileprivate func holder(of id: UInt32, tree: Set<Int32>) -> String? {
        if holders == nil { holders = BpfMapHolders.find(outside: tree) }
        return holders?[id]
    }
}

extension FileTableDump {
    /// The files.img entry of a BPF map fd, read from fdinfo (as CRIU reads it) and
    /// bpf_map_info of our copy of the fd; its entries are recorded once per map.
    func bpfMap(pid: Int32, fd: Int32, id: UInt32, info fdinfo: FdInfo, flags: UInt32) throws -> BpfmapFileEntry {
        let at = "pid \(pid) fd \(fd)"
        let ours = try Syscall.takeFd(pid: pid, fd: fd)
        defer { close(ours) }
        let info = try BpfMapInfo.of(ours, "BPF map at \(at)")
        let what = "\(at): BPF map '\(info.name)' (\(info.typeName))"
        guard BpfMapInfo.carried[info.type] != nil else {
            throw CheckpointError(.unsupported, "\(what) cannot be dumped: only hash, array, percpu hash, percpu array and LRU hash maps are carried")
        }
        if info.btfID != 0 {
            throw CheckpointError(.unsupported, "\(what) has BTF (id \(info.btfID)) that cannot be carried: the map would be made again without its types")
        }
        if info.ifindex != 0 { throw CheckpointError(.unsupported, "\(what) is offloaded to interface \(info.ifindex), which cannot be carried") }
        if info.flags & Bpf.mmapable != 0, (try? readProcFile("/proc/\(pid)/maps"))?.contains("anon_inode:bpf-map") ?? true {
            throw CheckpointError(.unsupported, "\(what) is mmapable and mapped into memory, which cannot be carried: the mapping would no longer be the map's")
        }
        if let holder = bpfMaps.holder(of: info.id, tree: Set(kinds.treePids.keys)) {
            throw CheckpointError(.unsupported, "\(what) is also held by \(holder), which would keep the old map after a restore")
        }
        func field(_ key: String) throws -> String {
            guard let v = fdinfo.fields[key] else { throw CheckpointError(.kernel, "\(what): no \(key) line in fdinfo") }
            return v
        }
        func hex(_ s: String) -> UInt64? { UInt64(s.hasPrefix("0x") ? String(s.dropFirst(2)) : s, radix: 16) }
        var e = BpfmapFileEntry()
        e.id = id; e.flags = flags; e.pos = 0; e.fown = FownEntry.none
        e.mapType = info.type; e.keySize = info.keySize; e.valueSize = info.valueSize; e.maxEntries = info.maxEntries
        e.mapID = info.id; e.mapName = info.name; e.ifindex = info.ifindex
        guard let mapFlags = hex(try field("map_flags")), let memlock = UInt64(try field("memlock")) else {
            throw CheckpointError(.kernel, "\(what): unreadable map_flags or memlock in fdinfo")
        }
        e.mapFlags = UInt32(truncatingIfNeeded: mapFlags); e.memlock = memlock
        e.frozen = try field("frozen") != "0"
        if let extra = fdinfo.fields["map_extra"].flatMap(hex) { e.mapExtra = extra }
        // A write-only description cannot look entries up: read through a description of our own.
        let reader = Int32(bitPattern: flags) & O_ACCMODE == O_WRONLY ? try Self.openMap(id: info.id, what) : ours
        defer { if reader != ours { close(reader) } }
        try bpfMaps.record(info, from: reader, cpus: try BpfMapInfo.possibleCPUs(), what: what)
        return e
    }

    static func openMap(id: UInt32, _ what: String) throws -> Int32 {
        var attr = Bpf.Attr(); attr.set(id, at: 0)
        return Int32(try Bpf.call("BPF_MAP_GET_FD_BY_ID \(id) for \(what)", Bpf.mapGetFdByID, &attr))
    }

    /// BPF programs, links, BTF and iterators: their state is the kernel's (verified
    /// code, attachments), which no syscall reads back whole.
    static func refuseBpfObject(_ link: String, at: String) -> CheckpointError {
        CheckpointError(.unsupported, "\(at): \(link) cannot be dumped: only BPF maps are carried, a BPF program, link or BTF object cannot be read back")
    }
}

extension BpfMapEntries {
    /// Every entry of the map, by BPF_MAP_LOOKUP_BATCH in chunks (or GET_NEXT_KEY and
    /// LOOKUP_ELEM where the map type has no batch lookup).
    static func read(_ fd: Int32, _ info: BpfMapInfo, stride: Int, _ what: String) throws -> BpfMapEntries {
        var out = BpfMapEntries()
        let keySize = Int(info.keySize)
        var chunk = Int(min(info.maxEntries, 1024))
        // The batch cursor is opaque: key_size bytes for arrays, a bucket index for hashes.
        var cursor = [UInt8](repeating: 0, count: max(keySize, 8)), next = cursor
        var started = false
        while out.count < Int(info.maxEntries) {
            var keys = [UInt8](repeating: 0, count: chunk * keySize), values = [UInt8](repeating: 0, count: chunk * stride)
            var attr = Bpf.Attr()
            let r = keys.withUnsafeMutableBytes { k in values.withUnsafeMutableBytes { v in
                cursor.withUnsafeMutableBytes { c in next.withUnsafeMutableBytes { n in
                    attr.set(started ? Bpf.address(c) : 0, at: 0); attr.set(Bpf.address(n), at: 8)
                    attr.set(Bpf.address(k), at: 16); attr.set(Bpf.address(v), at: 24)
                    attr.set(UInt32(chunk), at: 32); attr.set(UInt32(bitPattern: fd), at: 36)
                    return Bpf.result(Bpf.mapLookupBatch, &attr)
                } } } }
            let got = Int(attr.get(UInt32.self, at: 32))
            switch r {
            case .success, .failure(.ENOENT):
                out.count += got
                out.keys.append(contentsOf: keys.prefix(got * keySize)); out.values.append(contentsOf: values.prefix(got * stride))
                // ENOENT ends the walk; so does a call that found nothing more.
                if case .failure = r { return out }
                if got == 0 { return out }
            // A hash bucket holds more entries than the chunk.
            case .failure(.ENOSPC) where got == 0: chunk *= 2; continue
            case .failure(let err) where !started && (err == .EINVAL || err == .EOPNOTSUPP || err == Bpf.notSupported):
                return try readByKey(fd, info, stride: stride, what)
            case .failure(let err): throw CheckpointError.errno("BPF_MAP_LOOKUP_BATCH of \(what)", err)
            }
            started = true
            cursor = next
        }
        return out
    }

    private static func readByKey(_ fd: Int32, _ info: BpfMapInfo, stride: Int, _ what: String) throws -> BpfMapEntries {
        var out = BpfMapEntries()
        var key = [UInt8](repeating: 0, count: Int(info.keySize)), value = [UInt8](repeating: 0, count: stride)
        var first = true
        while out.count < Int(info.maxEntries) {
            var nextKey = key
            var attr = Bpf.Attr()
            let r = key.withUnsafeMutableBytes { k in nextKey.withUnsafeMutableBytes { n in
                attr.set(UInt32(bitPattern: fd), at: 0); attr.set(first ? 0 : Bpf.address(k), at: 8); attr.set(Bpf.address(n), at: 16)
                return Bpf.result(Bpf.mapGetNextKey, &attr)
            } }
            if r == .failure(.ENOENT) { break }
            _ = try r.get("BPF_MAP_GET_NEXT_KEY of \(what)")
            first = false
            key = nextKey
            try key.withUnsafeMutableBytes { k in try value.withUnsafeMutableBytes { v in
                var look = Bpf.Attr()
                look.set(UInt32(bitPattern: fd), at: 0); look.set(Bpf.address(k), at: 8); look.set(Bpf.address(v), at: 16)
                try Bpf.call("BPF_MAP_LOOKUP_ELEM of \(what)", Bpf.mapLookupElem, &look)
            } }
            out.count += 1; out.keys.append(contentsOf: key); out.values.append(contentsOf: value)
        }
        return out
    }
}
