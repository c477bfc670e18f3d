import Foundation
import LinuxKernel
import CShim
import ProcFS

/// Who else holds a BPF map besides the dumped tree's fds: a process outside the tree, a
/// pin in a BPF filesystem, a loaded program, an outer map (map-in-map). A restore makes a
/// new map, and every such holder would keep the old one: the tree would stop sharing it.
enum BpfMapHolders {
    static let objGet = 7, mapGetNextID = 12

    /// Map id -> the first holder found outside `tree` (host pids).
    static func find(outside tree: Set<Int32>) -> [UInt32: String] {
        var held: [UInt32: String] = [:]
        func note(_ id: UInt32, _ holder: @autoclosure () -> String) { if held[id] == nil { held[id] = holder() } }
        for (id, prog) in programMaps() { note(id, "BPF program \(prog)") }
        for (inner, outer) in outerMaps() { note(inner, "map-in-map \(outer)") }
        for (id, path) in pins(seenFrom: tree) { note(id, "the pin \(path)") }
        let me = getpid()
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
        for pid in pids where pid != me && !tree.contains(pid) {
            for fd in (try? ProcTree.fds(of: pid)) ?? [] {
                guard (try? ProcTree.link("/proc/\(pid)/fd/\(fd)")) == "anon_inode:bpf-map",
                      let id = (try? FdInfo.read(pid: pid, fd: fd))?.fields["map_id"].flatMap({ UInt32($0) }) else { continue }
                note(id, "pid \(pid) fd \(fd) outside the dumped tree")
            }
        }
        return held
    }

    /// Map id -> a loaded program that uses it.
    private static func programMaps() -> [UInt32: UInt32] {
        var users: [UInt32: UInt32] = [:]
        forEachObject(next: Bpf.progGetNextID, open: Bpf.progGetFdByID) { prog, fd in
            var ids = [UInt32](repeating: 0, count: 64)
            var info = [UInt8](repeating: 0, count: 64)
            let n: UInt32? = ids.withUnsafeMutableBytes { idBuf in
                info.withUnsafeMutableBytes { infoBuf in
                    infoBuf.storeBytes(of: UInt32(64), toByteOffset: 52, as: UInt32.self)
                    infoBuf.storeBytes(of: Bpf.address(idBuf), toByteOffset: 56, as: UInt64.self)
                    var attr = Bpf.Attr()
                    attr.set(UInt32(bitPattern: fd), at: 0); attr.set(UInt32(infoBuf.count), at: 4); attr.set(Bpf.address(infoBuf), at: 8)
                    guard case .success = Bpf.result(Bpf.objGetInfoByFd, &attr) else { return nil }
                    return infoBuf.load(fromByteOffset: 52, as: UInt32.self)
                }
            }
            // The kernel caps a program's maps at 64 (MAX_USED_MAPS).
            for id in ids.prefix(Int(min(n ?? 0, 64))) { users[id] = prog }
        }
        return users
    }

    /// Inner map id -> the outer map (array or hash of maps) that holds it: an outer
    /// map's values read back as the ids of its inner maps.
    private static func outerMaps() -> [UInt32: UInt32] {
        var inner: [UInt32: UInt32] = [:]
        forEachObject(next: mapGetNextID, open: Bpf.mapGetFdByID) { id, fd in
            guard let info = try? BpfMapInfo.of(fd, "BPF map \(id)"), info.type == 12 || info.type == 13,
                  let entries = try? BpfMapEntries.read(fd, info, stride: 4, "map-in-map \(id)") else { return }
            entries.values.withUnsafeBytes { v in
                for i in 0..<entries.count { inner[v.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)] = id }
            }
        }
        return inner
    }

    /// Map id -> a path where it is pinned, in the BPF filesystems the dumper or a task
    /// of the tree sees.
    private static func pins(seenFrom tree: Set<Int32>) -> [UInt32: String] {
        var roots: Set<String> = []
        var namespaces: Set<String> = []
        for pid in [getpid()] + tree.sorted() {
            guard let ns = try? ProcTree.link("/proc/\(pid)/ns/mnt"), namespaces.insert(ns).inserted else { continue }
            let prefix = pid == getpid() ? "" : "/proc/\(pid)/root"
            for m in (try? MountInfoEntry.read(pid: pid)) ?? [] where m.fsType == "bpf" { roots.insert(prefix + m.mountPoint) }
        }
        var pinned: [UInt32: String] = [:]
        for root in roots {
            let walk = FileManager.default.enumerator(atPath: root)
            while let name = walk?.nextObject() as? String {
                let path = root + "/" + name
                guard let fd = try? path.withCString({ p -> Int32 in
                    var attr = Bpf.Attr()
                    attr.set(UInt64(UInt(bitPattern: p)), at: 0); attr.set(Bpf.readOnly, at: 12)
                    return Int32(try Bpf.call("BPF_OBJ_GET \(path)", objGet, &attr))
                }) else { continue }
                defer { close(fd) }
                if (try? ProcTree.link("/proc/self/fd/\(fd)")) == "anon_inode:bpf-map", let info = try? BpfMapInfo.of(fd, path) {
                    pinned[info.id] = path
                }
            }
        }
        return pinned
    }

    /// `body` with the id and our fd of every program or map the kernel has loaded now.
    private static func forEachObject(next: Int, open: Int, _ body: (UInt32, Int32) -> Void) {
        var cursor = Bpf.Attr()
        while case .success = Bpf.result(next, &cursor) {
            let id = cursor.get(UInt32.self, at: 4)
            cursor.set(id, at: 0)
            var byID = Bpf.Attr(); byID.set(id, at: 0)
            // One unloaded since it was listed holds nothing.
            guard case .success(let fd) = Bpf.result(open, &byID) else { continue }
            body(id, Int32(fd))
            close(Int32(fd))
        }
    }
}
