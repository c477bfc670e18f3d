import Foundation
import LinuxKernel
import Images

/// An open namespace file (/proc/PID/ns/KIND, nsfs): recorded as CRIU's ns_file_entry by
/// the id the namespace has in ids-PID.img, and reopened at restore through a restored
/// task that is in it.
extension FileTableDump {
    /// The namespace kind and inode a link like "net:[4026531840]" names, if it is one.
    static func namespace(ofLink link: String) -> (kind: NamespaceKind, inode: UInt64)? {
        guard link.hasSuffix("]"), let open = link.firstIndex(of: ":"),
              let kind = NamespaceKind(rawValue: String(link[..<open])),
              link[link.index(after: open)...].hasPrefix("["),
              let inode = UInt64(link[link.index(open, offsetBy: 2)..<link.index(before: link.endIndex)]) else { return nil }
        return (kind, inode)
    }

    /// The entry of a namespace file; its ns id is filled in by `resolveNamespaceFiles`
    /// once every task's namespaces are numbered.
    func namespaceFile(kind: NamespaceKind, inode: UInt64, id: UInt32, flags: UInt32, at: String) -> FileEntry {
        var n = NsFileEntry()
        n.id = id; n.nsCflag = UInt32(kind.cloneFlag.rawValue); n.flags = flags; n.nsID = 0
        var f = FileEntry()
        f.type = .ns; f.id = id; f.nsf = n
        pendingNamespaces.append((id, kind, inode, at))
        return f
    }

    /// Each namespace file's id as `idOf` gives it (nil: no task of the tree is in it).
    func resolveNamespaceFiles(_ idOf: (UInt64) -> UInt32?) throws {
        for p in pendingNamespaces {
            guard let nsID = idOf(p.inode) else {
                throw CheckpointError(.unsupported, "\(p.at): a file of \(p.kind.rawValue) namespace \(p.inode), which no task of the dumped tree is in")
            }
            if let i = files.firstIndex(where: { $0.id == p.id }) { files[i].nsf.nsID = nsID }
        }
        pendingNamespaces = []
    }
}

extension RestoreResources {
    /// The namespace file `n`, opened through the first restored task in that namespace.
    func openNamespaceFile(_ n: NsFileEntry, _ what: String) throws -> Int32 {
        guard let kind = NamespaceKind.allCases.first(where: { UInt32($0.cloneFlag.rawValue) == n.nsCflag }) else {
            throw CheckpointError(.image, "\(what): namespace kind \(n.nsCflag) is none of CLONE_NEW*")
        }
        for p in images.processes where !p.isZombie {
            let ids = try images.dir.readOne(.ids(Int32(p.entry.pid)), as: TaskKobjIdsEntry.self)
            guard ids[namespace: kind] == n.nsID, let host = kinds.hostPids[Int32(p.entry.pid)] else { continue }
            let flags = Int32(bitPattern: n.flags) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY) | O_CLOEXEC
            return try Syscall.retrying("open the \(kind.rawValue) namespace of restored pid \(p.entry.pid) for \(what)") {
                open("/proc/\(host)/ns/\(kind.rawValue)", flags)
            }
        }
        throw CheckpointError(.image, "\(what): no restored task is in \(kind.rawValue) namespace \(n.nsID)")
    }
}
