// BPF maps (issue 11): hash, array, per-CPU and LRU maps with their entries, flags, names,
// frozen state and descriptions, restored for real in both modes; what is refused; and
// the images interchanged with CRIU 4.2.

import Foundation
import Images
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Workload {
    static let bpfMap = Workload(name: "bpf_map")
    static let bpfMapCriu = Workload(name: "bpf_map", args: ["criu"])
    static let bpfRingbuf = Workload(name: "bpf_map_refused", args: ["ringbuf"])
    static let bpfMapped = Workload(name: "bpf_map_refused", args: ["mmapped"])
    static let bpfProg = Workload(name: "bpf_map_refused", args: ["prog"])
    static let bpfMapBtf = Workload(name: "bpf_map_refused", args: ["btf"])
    static let bpfMapUsed = Workload(name: "bpf_map_refused", args: ["used"])
    static let bpfMapInner = Workload(name: "bpf_map_refused", args: ["inner"])
    static let bpfMapOutside = Workload(name: "bpf_map_refused", args: ["outside"])
    static let bpfMapPinned = Workload(name: "bpf_map_refused", args: ["pinned"])
}

extension CheckpointRestoreTests {
    @Suite("BPF maps")
    struct BpfMaps {
        @Test("BPF maps: every entry, info, frozen, fd flags, shared descriptions, updates after", arguments: Mode.allCases)
        func maps(_ mode: Mode) async throws { try await checkpointRestore(.bpfMap, mode) }

        @Test("refused at dump with one line; the workload keeps running",
              arguments: zip([Workload.bpfRingbuf, .bpfMapped, .bpfProg, .bpfMapBtf, .bpfMapUsed, .bpfMapInner, .bpfMapOutside, .bpfMapPinned],
                             ["'wl_ring' (ringbuf) cannot be dumped", "'wl_mapped' (array) is mmapable and mapped",
                              "anon_inode:bpf-prog cannot be dumped", "'wl_btf' (hash) has BTF",
                              "'wl_kept' (hash) is also held by BPF program", "'wl_kept' (hash) is also held by map-in-map",
                              "'wl_kept' (hash) is also held by pid", "'wl_kept' (hash) is also held by the pin /"]))
        func refused(_ w: Workload, _ reason: String) async throws {
            try await expectRefusedDump(w, reason)
        }

        @Test("bpfmap-data.img whose entries do not fit the map: restore names it in one line, before anything exists")
        func damagedData() async throws {
            let damage = ImageDamage(name: "one entry more than the bytes hold", workload: .bpfMapCriu) { d, _, _ in
                var r = try d.reader(.bpfmapData)
                var maps: [(BpfmapDataEntry, Data)] = []
                while let e = try r.next(BpfmapDataEntry.self) { maps.append((e, try r.raw(Int(e.keysBytes + e.valuesBytes)))) }
                maps[0].0.count += 1
                let w = try d.writer(.bpfmapData)
                for (e, bytes) in maps { try w.append(e); try w.appendRaw(bytes) }
                try w.close()
                return .bpfmapData
            }
            try await CheckpointRestoreTests.DamagedImages().damagedImage(damage)
        }
    }
}

@Suite("CRIU 4.2 interop: BPF maps", .serialized, .enabled(if: ReferenceCriu.available, ReferenceCriu.reason))
struct BpfMapInteropTests {
    /// CRIU carries only hash and array maps: the "criu" variant has just those.
    @Test("hash and array maps, frozen, with their entries", arguments: Direction.allCases)
    func maps(_ d: Direction) async throws { try await crossRestore(.bpfMapCriu, d) }
}
