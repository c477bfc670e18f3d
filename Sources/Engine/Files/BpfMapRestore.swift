import Foundation
import LinuxKernel
import CShim
import Images

extension BpfMapEntries {
    /// bpfmap-data.img by dumped map id, each checked against the map files.img names:
    /// whole keys and values, no more entries than the map holds. The first entry of a
    /// map id is the one used (CRIU writes one per description, all alike).
    static func readAll(_ dir: ImageDirectory, files: [UInt32: FileEntry]) throws -> [UInt32: BpfMapEntries] {
        var out: [UInt32: BpfMapEntries] = [:]
        guard dir.exists(.bpfmapData) else { return out }
        var r = try dir.reader(.bpfmapData)
        do {
            while let e = try r.next(BpfmapDataEntry.self) {
                let keys = try r.raw(Int(e.keysBytes)), values = try r.raw(Int(e.valuesBytes))
                if out[e.mapID] == nil { out[e.mapID] = BpfMapEntries(count: Int(e.count), keys: keys, values: values) }
            }
        } catch let e as ImageError { throw e.checkpointError }
        let cpus = try BpfMapInfo.possibleCPUs()
        for f in files.values where f.type == .bpfmap {
            guard let d = out[f.bpf.mapID] else { continue }
            let b = f.bpf
            var info = BpfMapInfo(); info.type = b.mapType; info.valueSize = b.valueSize
            let stride = info.valueStride(cpus: cpus)
            guard d.count <= Int(b.maxEntries), d.keys.count == d.count * Int(b.keySize), d.values.count == d.count * stride else {
                throw CheckpointError(.image, "\(ImageName.bpfmapData): map \(b.mapID) has \(d.count) entries in \(d.keys.count) key and \(d.values.count) value bytes, which do not fit \(b.keySize)-byte keys and \(stride)-byte values (\(cpus) CPUs) of at most \(b.maxEntries) entries")
            }
        }
        return out
    }
}

extension RestoreResources {
    /// A new description of the dumped map: made once per map (type, sizes, flags, name,
    /// entries, frozen), each description then opened by the new map's id with its access
    /// mode, so descriptions that shared a map share the new one.
    func openBpfMap(_ e: BpfmapFileEntry, _ what: String) throws -> Int32 {
        let id = try bpfMapObject(e, what).id
        let access = Int32(bitPattern: e.flags) & O_ACCMODE
        var attr = Bpf.Attr()
        attr.set(id, at: 0); attr.set(access == O_RDONLY ? Bpf.readOnly : access == O_WRONLY ? Bpf.writeOnly : 0, at: 8)
        let fd = Int32(try Bpf.call("BPF_MAP_GET_FD_BY_ID \(id) for \(what)", Bpf.mapGetFdByID, &attr))
        let status = Int32(bitPattern: e.flags) & (O_NONBLOCK | O_APPEND)
        if status != 0 && fcntl(fd, F_SETFL, status) != 0 { close(fd); throw CheckpointError.errno("F_SETFL \(status) on \(what)") }
        return fd
    }

    private func bpfMapObject(_ e: BpfmapFileEntry, _ what: String) throws -> (fd: Int32, id: UInt32) {
        if let made = kinds.bpfMaps[e.mapID] { return made }
        var attr = Bpf.Attr()
        attr.set(e.mapType, at: 0); attr.set(e.keySize, at: 4); attr.set(e.valueSize, at: 8)
        attr.set(e.maxEntries, at: 12); attr.set(e.mapFlags, at: 16)
        for (i, byte) in e.mapName.utf8.prefix(15).enumerated() { attr.bytes[28 + i] = byte }
        if e.hasMapExtra { attr.set(e.mapExtra, at: 64) }
        let fd = Int32(try Bpf.call("BPF_MAP_CREATE '\(e.mapName)' type \(e.mapType) for \(what)", Bpf.mapCreate, &attr))
        do {
            let info = try BpfMapInfo.of(fd, what)
            kinds.bpfMaps[e.mapID] = (fd, info.id)
            if let d = images.bpfMaps[e.mapID], d.count > 0 {
                try d.write(to: fd, keySize: Int(e.keySize), what)
                // An LRU map may evict while it is filled (free nodes sit in other CPUs'
                // lists): a map that lost entries is not the dumped one.
                if info.type == 9 {
                    let kept = try BpfMapEntries.read(fd, info, stride: Int(e.valueSize), what).count
                    if kept != d.count { throw CheckpointError(.invalidState, "\(what): LRU map '\(e.mapName)' kept \(kept) of its \(d.count) entries when filled again") }
                }
            }
            if e.frozen {
                var freeze = Bpf.Attr(); freeze.set(UInt32(bitPattern: fd), at: 0)
                try Bpf.call("BPF_MAP_FREEZE of \(what)", Bpf.mapFreeze, &freeze)
            }
        } catch {
            if kinds.bpfMaps[e.mapID] == nil { close(fd) }
            throw error
        }
        return (fd, kinds.bpfMaps[e.mapID]!.id)
    }
}

extension BpfMapEntries {
    /// Every entry into map `fd` by one BPF_MAP_UPDATE_BATCH (or UPDATE_ELEM one by one
    /// where the map type has no batch update).
    func write(to fd: Int32, keySize: Int, _ what: String) throws {
        var keys = [UInt8](self.keys), values = [UInt8](self.values)
        let stride = values.count / count
        var attr = Bpf.Attr()
        let r = keys.withUnsafeMutableBytes { k in values.withUnsafeMutableBytes { v in
            attr.set(Bpf.address(k), at: 16); attr.set(Bpf.address(v), at: 24)
            attr.set(UInt32(count), at: 32); attr.set(UInt32(bitPattern: fd), at: 36)
            return Bpf.result(Bpf.mapUpdateBatch, &attr)
        } }
        switch r {
        case .success: return
        case .failure(let err) where attr.get(UInt32.self, at: 32) == 0 && (err == .EINVAL || err == .EOPNOTSUPP || err == Bpf.notSupported): break
        case .failure(let err): throw CheckpointError.errno("BPF_MAP_UPDATE_BATCH of \(count) entries into \(what)", err)
        }
        try keys.withUnsafeMutableBytes { k in try values.withUnsafeMutableBytes { v in
            for i in 0..<count {
                var one = Bpf.Attr()
                one.set(UInt32(bitPattern: fd), at: 0)
                one.set(Bpf.address(k) + UInt64(i * keySize), at: 8); one.set(Bpf.address(v) + UInt64(i * stride), at: 16)
                try Bpf.call("BPF_MAP_UPDATE_ELEM \(i) into \(what)", Bpf.mapUpdateElem, &one)
            }
        } }
    }
}
