import Foundation
import LinuxKernel
import Images
import ProcFS

/// What a dump of a mount namespace wrote.
public struct DumpedMountNamespace {
    public let namespaceID: UInt32
    public let imageName: ImageName
    public let entries: [MntEntry]
    public let plan: MountPlan
    /// The tmpfs contents images written.
    public let contentImages: [ImageName]
}

extension MountNamespaceDump {
    /// Dumps the mount namespace of `rootPid` as the task sees it (mount points relative to
    /// its root). Called while the tree is stopped. Returns nil, writing nothing, when the
    /// task shares our mount namespace. `externalMounts` maps mount points to the keys to
    /// record (runc's ext_mnt); with `autoExternal` a mount from outside that no key names
    /// is recorded as CRIU does it (see `autoExternalKey`); `otherPids` must all share the
    /// root task's namespace; `namespaceID` names the image (default: the root's ids
    /// image, else 1).
    @discardableResult
    public static func dump(rootPid: Int32, images: ImageDirectory, externalMounts: [String: String] = [:],
                            autoExternal: Bool = false, otherPids: [Int32] = [], namespaceID: UInt32? = nil,
                            log: Log = .silent) throws -> DumpedMountNamespace? {
        let namespace = try NamespaceSet.inode(of: .mnt, pid: rootPid)
        if namespace == (try NamespaceSet.inode(of: .mnt, pid: getpid())) {
            log.info("mnt: pid \(rootPid) shares our mount namespace; nothing to dump")
            return nil
        }
        for pid in otherPids {
            // A task that exited meanwhile has no namespace links: its absence is not ours to report.
            guard let other = try? NamespaceSet.inode(of: .mnt, pid: pid), other != namespace else { continue }
            throw CheckpointError(.unsupported, "pid \(pid) is in another mount namespace than the root task \(rootPid): nested mount namespaces are not supported")
        }
        let mounts: [MountInfoEntry]
        do { mounts = try MountInfoEntry.read(pid: rootPid) } catch {
            throw CheckpointError(.notFound, "mount table of pid \(rootPid): \(error)", cause: error)
        }
        if let deleted = mounts.first(where: { $0.mountPoint.hasSuffix(" (deleted)") }) {
            throw CheckpointError(.unsupported, "mount \(deleted.mountPoint) of pid \(rootPid): its mount point was deleted")
        }
        // Keys as callers spell them ("/dev/null/", "//etc/hosts") name the same mount points.
        var external: [String: String] = [:]
        for (mountPoint, key) in externalMounts { external[(mountPoint as NSString).standardizingPath] = key }
        var entries = mounts.map { m in
            MntEntry(m, externalKey: m.mountPoint == "/" ? nil : external[m.mountPoint])
        }
        var planned: MountPlan?
        while planned == nil {
            do { planned = try MountPlan(entries: entries) } catch let failure as MountPlan.Failure {
                guard autoExternal, let i = failure.mountIndex, !entries[i].hasExtKey,
                      let host = hostPath(of: mounts[i]) else {
                    throw refusal(failure, mounts: mounts, pid: rootPid)
                }
                // CRIU's form: the key says "found by itself", the source the host path without its "/".
                entries[i].extKey = autoExternalKey
                entries[i].source = String(host.dropFirst())
                log.info("mnt: \(mounts[i].mountPoint) is the host's \(host): external (auto)")
            }
        }
        let plan = planned!

        var saved: [UInt32: ImageName] = [:]
        var contents: [(MountInfoEntry, String)] = []
        for step in plan.steps {
            let m = mounts[step.index], e = entries[step.index]
            log.debug("mnt: \(m.mountPoint) \(m.fsType) \(m.source) [\(m.root)]: \(step.origin)")
            guard step.restoresContents, saved[e.rootDev] == nil else { continue }
            contents.append((m, images.file(e.tmpfsImageName)))
            saved[e.rootDev] = e.tmpfsImageName
        }
        try saveContents(contents, pid: rootPid)
        let id = namespaceID ?? recordedNamespaceID(rootPid, images: images)
        let name = ImageName.mountpoints(id)
        try images.write(name, entries)
        log.info("mnt: pid \(rootPid): \(entries.count) mounts in \(name), \(saved.count) tmpfs contents saved")
        return DumpedMountNamespace(namespaceID: id, imageName: name, entries: entries, plan: plan,
                                    contentImages: saved.values.sorted { $0.fileName < $1.fileName })
    }

    /// The mount namespace id the engine wrote in the root's ids image (its file is named
    /// by the pid inside the tree's pid namespace), so the image names agree; else 1.
    static func recordedNamespaceID(_ pid: Int32, images: ImageDirectory) -> UInt32 {
        var names = [ImageName.ids(pid)]
        if let inner = (try? TaskStatus.read(pid: pid))?.nsPid.last {
            names.insert(.ids(inner), at: 0)
        }
        for name in names where images.exists(name) {
            if let ids = try? images.readOne(name, as: TaskKobjIdsEntry.self), ids.hasMntNsID {
                return ids.mntNsID
            }
        }
        return 1
    }

    /// The tmpfs contents, all at once: each is a tar run that mostly waits (a container
    /// has five, all frozen time); the failure reported is the first in mount order.
    private static func saveContents(_ contents: [(MountInfoEntry, String)], pid: Int32) throws {
        let failures = UnsafeMutableBufferPointer<Error?>.allocate(capacity: contents.count)
        failures.initialize(repeating: nil)
        defer { failures.deinitialize(); failures.deallocate() }
        DispatchQueue.concurrentPerform(iterations: contents.count) { i in
            do { try saveContents(of: contents[i].0, pid: pid, to: contents[i].1) } catch { failures[i] = error }
        }
        if let first = failures.lazy.compactMap({ $0 }).first { throw first }
    }

    /// Tars one tmpfs, without the mounts on top of it: a detached copy of just that mount
    /// (open_tree, made inside the container's namespace where the mount lives) is what
    /// tar reads, through our /proc.
    private static func saveContents(of mount: MountInfoEntry, pid: Int32, to image: String) throws {
        let (pathFd, cloneFd): (Int32, Int32) = try NamespaceJoin.run(in: pid, [.mnt]) {
            let fd = open(mount.mountPoint, oPath | O_CLOEXEC)
            if fd < 0 { throw CheckpointError.errno("open \(mount.mountPoint) in the mount namespace of pid \(pid)") }
            do {
                return (fd, try cleanCopy(of: mount, fd: fd, pid: pid))
            } catch {
                close(fd)
                throw error
            }
        }
        defer { close(pathFd); close(cloneFd) }
        let reached = try FdInfo.read(pid: getpid(), fd: pathFd).mntId
        guard reached == mount.mountID else {
            throw CheckpointError(.unsupported, "tmpfs at \(mount.mountPoint) of pid \(pid) (mount \(mount.mountID)) cannot be reached: mount \(reached) covers it")
        }
        try TmpfsArchive.create(from: "/proc/\(getpid())/fd/\(cloneFd)", to: image)
    }

    /// open_tree(OPEN_TREE_CLONE) of the mount at `fd`. An unbindable mount cannot be
    /// cloned where it is; this thread then takes a private copy of the namespace (which
    /// dies with it) and clones the copy's mount, made private there first.
    private static func cleanCopy(of mount: MountInfoEntry, fd: Int32, pid: Int32) throws -> Int32 {
        do {
            return try MountCall.cloneMount(fd, "open_tree(\(mount.mountPoint)) in pid \(pid)'s namespace")
        } catch let e as CheckpointError where e.errno == .EINVAL && mount.isUnbindable {
            try MountCall.raw("unshare(CLONE_NEWNS) to copy the unbindable \(mount.mountPoint)", SyscallNumber.unshare, CloneFlags.newNS.argument)
            // Only the copy changes: a propagation type is not an event peers receive.
            try MountCall.mount(nil, mount.mountPoint, nil, .private, nil, "make the copy of \(mount.mountPoint) private")
            let copy = open(mount.mountPoint, oPath | O_CLOEXEC)
            if copy < 0 { throw CheckpointError.errno("open the copy of \(mount.mountPoint)") }
            defer { close(copy) }
            return try MountCall.cloneMount(copy, "open_tree(\(mount.mountPoint)) in a copy of pid \(pid)'s namespace")
        }
    }

    private static func refusal(_ failure: MountPlan.Failure, mounts: [MountInfoEntry], pid: Int32) -> CheckpointError {
        let hint = "name it in ext_mnt (--external mnt[MOUNTPOINT]:KEY) to bind a host path there at restore"
        switch failure {
        case .noRoot:
            return CheckpointError(.unsupported, "mount table of pid \(pid): no root mount (\"/\") is visible")
        case .severalRoots(let roots):
            return CheckpointError(.unsupported, "mount table of pid \(pid): several root mounts (ids \(roots.map { mounts[$0].mountID }))")
        case .noParent(let i):
            return CheckpointError(.unsupported, "mount \(mounts[i].mountPoint) of pid \(pid): its parent mount \(mounts[i].parentID) is not visible from the task's root")
        case .outside(let i):
            return CheckpointError(.unsupported, "mount \(mounts[i].mountPoint) (from \(hostOrigin(of: mounts[i]))) is outside the container and not external; \(hint)")
        case .unsupported(let i):
            let m = mounts[i]
            if let host = hostPath(of: m) {
                return CheckpointError(.unsupported, "mount \(m.mountPoint) (from \(host)) is outside the container and not external; \(hint)")
            }
            return CheckpointError(.unsupported, "mount \(m.mountPoint): file system type \(m.fsType) (source \(m.source)) is not supported; \(hint)")
        case .dependencyCycle(let pending):
            return CheckpointError(.unsupported, "mount table of pid \(pid): mounts \(pending.map { mounts[$0].mountPoint }) bind from each other in a cycle")
        }
    }

    /// Where the host sees what `mount` shows: a host mount of the same superblock whose
    /// root holds it, plus the rest of the path.
    static func hostPath(of mount: MountInfoEntry) -> String? {
        guard let host = try? MountInfoEntry.read(pid: getpid()) else { return nil }
        let holders = host.filter { h in
            h.devMajor == mount.devMajor && h.devMinor == mount.devMinor && MountPath.isWithin(mount.root, h.root)
        }
        guard let h = holders.max(by: { $0.root.count < $1.root.count }) else { return nil }
        return MountPath.join(h.mountPoint, MountPath.relative(mount.root, to: h.root))
    }

    static func hostOrigin(of mount: MountInfoEntry) -> String {
        hostPath(of: mount) ?? "\(mount.source):\(mount.root)"
    }
}

/// The ext_key CRIU writes for a mount --ext-mount-map auto found external (mount.h's
/// AUTODETECTED_MOUNT); the entry's source then holds the host path without its leading "/".
public let autoExternalKey = "CRIU:AUTOGENERATED"

extension MountPlan.Failure {
    /// The mount a failure is about, when it is about one that could be external.
    var mountIndex: Int? {
        switch self {
        case .outside(let i), .unsupported(let i): return i
        default: return nil
        }
    }
}

/// O_PATH, which Swift's Glibc import does not export.
let oPath: Int32 = 0o1000_0000
