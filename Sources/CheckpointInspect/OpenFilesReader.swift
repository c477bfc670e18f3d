import LinuxKernel
import Foundation
import Images

/// Open files per process: fdinfo-<files id>.img lists each fd with the id of its open
/// file description in files.img; fs-PID.img names cwd and root the same way.
struct OpenFilesReader {
    let images: ImageDirectory
    private var descriptions: [UInt32: FileEntry] = [:]

    init(images: ImageDirectory) throws {
        self.images = images
        guard images.exists(.files) else { return }
        for f in try images.read(.files, as: FileEntry.self) { descriptions[f.id] = f }
    }

    /// CRIU's fd_types names (images/fdinfo.proto).
    static let typeNames: [Int: String] = [
        0: "UND", 1: "REG", 2: "PIPE", 3: "FIFO", 4: "INETSK", 5: "UNIXSK", 6: "EVENTFD",
        7: "EVENTPOLL", 8: "INOTIFY", 9: "SIGNALFD", 10: "PACKETSK", 11: "TTY", 12: "FANOTIFY",
        13: "NETLINKSK", 14: "NS", 15: "TUNF", 16: "EXT", 17: "TIMERFD", 18: "MEMFD", 19: "BPFMAP",
        20: "PIDFD", 65534: "CTL_TTY", 65535: "AUTOFS_PIPE",
    ]

    /// The files of every process in `tree` (pre-order), those without an fdinfo image left out.
    func read(_ tree: InspectReport.Process) throws -> [InspectReport.ProcessFiles] {
        var out: [InspectReport.ProcessFiles] = []
        func visit(_ p: InspectReport.Process) throws {
            if p.taskState == "alive" || p.taskState == "stopped", let files = try files(of: p.pid) {
                out.append(InspectReport.ProcessFiles(pid: p.pid, openFiles: files))
            }
            for c in p.children ?? [] { try visit(c) }
        }
        try visit(tree)
        return out
    }

    private func files(of pid: UInt32) throws -> [InspectReport.OpenFile]? {
        // fdinfo images are named by the files id, which is the pid unless fd tables are shared.
        var filesID = pid
        if images.exists(.core(pid)) {
            let core = try images.readOne(.core(pid), as: CoreEntry.self)
            if core.hasIds, core.ids.hasFilesID { filesID = core.ids.filesID }
        }
        guard images.exists(.fdinfo(filesID)) else { return nil }
        var out: [InspectReport.OpenFile] = []
        for fd in try images.read(.fdinfo(filesID), as: FdinfoEntry.self).sorted(by: { $0.fd < $1.fd }) {
            let type = Self.typeNames[fd.type.rawValue] ?? "\(fd.type.rawValue)"
            out.append(InspectReport.OpenFile(type: type, fd: "\(fd.fd)", path: describe(fd.id, type: type)))
        }
        if images.exists(.fs(pid)) {
            let fs = try images.readOne(.fs(pid), as: FsEntry.self)
            out.append(InspectReport.OpenFile(type: "cwd", fd: "cwd", path: describe(fs.cwdID, type: "REG")))
            out.append(InspectReport.OpenFile(type: "root", fd: "root", path: describe(fs.rootID, type: "REG")))
        }
        return out
    }

    /// The target as /proc/PID/fd shows it.
    private func describe(_ id: UInt32, type: String) -> String {
        guard let f = descriptions[id] else { return "file id \(id) (not in files.img)" }
        switch f.type {
        case .reg: return f.reg.name
        case .pipe: return "pipe:[\(f.pipe.pipeID)]"
        case .fifo: return descriptions[f.fifo.regfID].map(\.reg.name) ?? "fifo:[\(f.fifo.pipeID)]"
        case .tty: return descriptions[f.tty.hasRegfID ? f.tty.regfID : id].flatMap { $0.type == .reg ? $0.reg.name : nil } ?? "tty"
        case .unixsk:
            let name = f.usk.name
            if name.isEmpty { return "socket:[\(f.usk.ino)]" }
            // An abstract address starts with a NUL byte, shown as '@'.
            if name.first == 0 { return "socket:[\(f.usk.ino)] @" + String(decoding: name.dropFirst(), as: UTF8.self) }
            return "socket:[\(f.usk.ino)] " + String(decoding: name, as: UTF8.self)
        case .inetsk: return "socket:[\(f.isk.ino)]"
        case .memfd: return "memfd (inode \(f.memfd.inodeID))"
        case .eventfd: return "anon_inode:[eventfd]"
        case .eventpoll: return "anon_inode:[eventpoll]"
        case .signalfd: return "anon_inode:[signalfd]"
        case .timerfd: return "anon_inode:[timerfd]"
        case .inotify: return "anon_inode:inotify"
        case .fanotify: return "anon_inode:[fanotify]"
        case .pidfd: return "anon_inode:[pidfd]"
        case .tunf: return "/dev/net/tun"
        default: return type.lowercased()
        }
    }
}
