import Foundation
import LinuxKernel
import CShim
import Images

/// The owner of an open file description (F_SETOWN_EX), the signal it sends (F_SETSIG)
/// and who set it (F_GETOWNER_UIDS: the kernel checks them before it signals), saved in
/// the FownEntry of the file's own entry as CRIU does.
enum FileOwner {
    static let getOwnerUids: Int32 = 17   // F_GETOWNER_UIDS
    static let getOwnEx: Int32 = 16, setOwnEx: Int32 = 15, getSig: Int32 = 11, setSig: Int32 = 10
    static let ownerTid: Int32 = 0, ownerPid: Int32 = 1, ownerPgrp: Int32 = 2

    /// `pid`'s `fd`'s owner with pids as the tree sees them; nil when it has none.
    static func dump(pid: Int32, fd: Int32, treeTids: [Int32: Int32], at: String) throws -> FownEntry? {
        let ours = try Syscall.takeFd(pid: pid, fd: fd)
        defer { close(ours) }
        var owner: (type: Int32, pid: Int32) = (0, 0)
        // An O_PATH fd has no owner to ask for (EBADF).
        switch Syscall.valueOrErrno({ fcntl(ours, getOwnEx, &owner) }) {
        case .failure(.EBADF): return nil
        case .failure(let err): throw CheckpointError.errno("F_GETOWN_EX of \(at)", err)
        case .success: break
        }
        let signum = try Syscall.retrying("F_GETSIG of \(at)") { fcntl(ours, getSig) }
        if owner.pid == 0 && signum == 0 { return nil }
        var fown = FownEntry.none
        fown.signum = UInt32(signum)
        guard owner.pid != 0 else { return fown }
        var uids: (UInt32, UInt32) = (0, 0)
        try Syscall.retrying("F_GETOWNER_UIDS of \(at)") { fcntl(ours, getOwnerUids, &uids) }
        guard let vpid = treeTids[owner.pid] else {
            let what = owner.type == ownerPgrp ? "process group" : owner.type == ownerTid ? "thread" : "process"
            throw CheckpointError(.unsupported, "\(at): its owner (F_SETOWN) is \(what) \(owner.pid), outside the dumped tree")
        }
        fown.uid = uids.0; fown.euid = uids.1
        fown.pidType = UInt32(owner.type); fown.pid = UInt32(vpid)
        return fown
    }

    /// Sets `fown` on our `fd` with `hostPid` standing for the owner. The kernel records
    /// the caller's uid and euid with the owner, so this thread alone (a raw setresuid,
    /// not glibc's, which changes every thread) takes the dumped ones for the call.
    static func restore(_ fown: FownEntry, fd: Int32, hostPid: Int32, what: String) throws {
        if fown.signum != 0 {
            try Syscall.retrying("F_SETSIG \(fown.signum) on \(what)") { fcntl(fd, setSig, Int32(fown.signum)) }
        }
        guard fown.pid != 0 else { return }
        let changeIDs = fown.uid != 0 || fown.euid != 0
        if changeIDs {
            try Syscall.raw("setresuid(\(fown.uid), \(fown.euid)) to own \(what)", SyscallNumber.setresuid,
                            Int(fown.uid), Int(fown.euid), -1)
        }
        var owner: (type: Int32, pid: Int32) = (Int32(fown.pidType), hostPid)
        let set = Syscall.valueOrErrno { fcntl(fd, setOwnEx, &owner) }
        if changeIDs { _ = Syscall.result(SyscallNumber.setresuid, 0, 0, -1) }
        _ = try set.get("F_SETOWN_EX \(fown.pidType):\(fown.pid) on \(what)")
    }
}

extension FileEntry {
    /// The owner kept in the message of each kind that has one (a FIFO's is in its path entry).
    var owner: FownEntry? {
        get {
            switch type {
            case .reg: return reg.fown
            case .inetsk: return isk.fown
            case .unixsk: return usk.fown
            case .pipe: return pipe.fown
            case .tty: return tty.fown
            case .eventfd: return efd.fown
            case .eventpoll: return epfd.fown
            case .signalfd: return sgfd.fown
            case .timerfd: return tfd.fown
            case .inotify: return ify.fown
            case .fanotify: return ffy.fown
            case .memfd: return memfd.fown
            case .pidfd: return pidfd.fown
            case .bpfmap: return bpf.fown
            default: return nil
            }
        }
        set {
            guard let f = newValue else { return }
            switch type {
            case .reg: reg.fown = f
            case .inetsk: isk.fown = f
            case .unixsk: usk.fown = f
            case .pipe: pipe.fown = f
            case .tty: tty.fown = f
            case .eventfd: efd.fown = f
            case .eventpoll: epfd.fown = f
            case .signalfd: sgfd.fown = f
            case .timerfd: tfd.fown = f
            case .inotify: ify.fown = f
            case .fanotify: ffy.fown = f
            case .memfd: memfd.fown = f
            case .pidfd: pidfd.fown = f
            case .bpfmap: bpf.fown = f
            default: break
            }
        }
    }

    /// The file status flags of the description (O_ASYNC among them), where the kind keeps them.
    var statusFlags: UInt32? {
        switch type {
        case .reg: return reg.flags
        case .inetsk: return isk.flags
        case .unixsk: return usk.flags
        case .pipe: return pipe.flags
        case .tty: return tty.flags
        case .eventfd: return efd.flags
        case .eventpoll: return epfd.flags
        case .signalfd: return sgfd.flags
        case .timerfd: return tfd.flags
        case .inotify: return ify.flags
        case .fanotify: return ffy.flags
        case .memfd: return memfd.flags
        case .pidfd: return pidfd.flags
        case .bpfmap: return bpf.flags
        default: return nil
        }
    }
}

extension RestoreResources {
    /// Remembers the owner of `file`, open as our `fd`, for `restoreOwners`: owners may
    /// be threads made later.
    func noteOwner(of file: FileEntry, fd: Int32) throws {
        let fown = ownerSource(file).owner ?? FownEntry.none
        guard fown.pid != 0 || fown.signum != 0 else { return }
        let held = try Syscall.retrying("dup file id \(file.id)") { fcntl(fd, F_DUPFD_CLOEXEC, 0) }
        kinds.pendingOwners.append((held, fown, "file id \(file.id) (\(file.type))"))
    }

    /// Whether `file` had O_ASYNC set, and no fd of it has been armed yet.
    func takeAsync(_ file: FileEntry) -> Bool {
        guard (ownerSource(file).statusFlags ?? 0) & UInt32(O_ASYNC) != 0 else { return false }
        return kinds.armedAsync.insert(file.id).inserted
    }

    private func ownerSource(_ file: FileEntry) -> FileEntry {
        file.type == .fifo ? images.files[file.fifo.regfID] ?? file : file
    }

    /// Every noted owner and signal, once all tasks and threads exist;
    /// `hostTids` maps the tree's tids to ours.
    func restoreOwners(hostTids: [Int32: Int32]) throws {
        defer {
            for o in kinds.pendingOwners { close(o.fd) }
            kinds.pendingOwners = []
        }
        for o in kinds.pendingOwners {
            var host: Int32 = 0
            if o.fown.pid != 0 {
                guard let h = hostTids[Int32(bitPattern: o.fown.pid)] else {
                    throw CheckpointError(.image, "\(o.what): owner \(o.fown.pid) is not in the restored tree")
                }
                host = h
            }
            try FileOwner.restore(o.fown, fd: o.fd, hostPid: host, what: o.what)
        }
    }
}

extension RestoredProcess {
    /// O_ASYNC set from inside the task, on the first fd of each description that had it:
    /// the kernel signals with the fd number that armed it (si_fd), so it must be the task's.
    func armAsync(resources: RestoreResources) throws {
        for e in image.fds {
            guard let file = resources.images.files[e.id], resources.takeAsync(file) else { continue }
            var r = try callRaw(on: nil, SyscallNumber.fcntl, [UInt64(e.fd), UInt64(F_GETFL)])
            let flags = UInt64(max(r, 0)) & ~UInt64(O_ASYNC)
            // Off first: a kind restored with O_ASYNC in its flags was armed by the restorer's fd.
            for f in [flags, flags | UInt64(O_ASYNC)] where r >= 0 {
                r = try callRaw(on: nil, SyscallNumber.fcntl, [UInt64(e.fd), UInt64(F_SETFL), f])
            }
            if r < 0 { throw CheckpointError.errno("pid \(pid): set O_ASYNC on fd \(e.fd)", Errno(Int32(-r))) }
        }
    }
}
