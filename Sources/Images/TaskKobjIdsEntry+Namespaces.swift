import LinuxKernel

extension TaskKobjIdsEntry {
    /// The id ids-PID.img (and inventory.img's root_ids) gives the task's `kind` namespace:
    /// CRIU's pid_ns_id, net_ns_id, ... fields; nil when the field is not set.
    public subscript(namespace kind: NamespaceKind) -> UInt32? {
        get {
            switch kind {
            case .pid: return hasPidNsID ? pidNsID : nil
            case .net: return hasNetNsID ? netNsID : nil
            case .ipc: return hasIpcNsID ? ipcNsID : nil
            case .uts: return hasUtsNsID ? utsNsID : nil
            case .mnt: return hasMntNsID ? mntNsID : nil
            case .user: return hasUserNsID ? userNsID : nil
            case .cgroup: return hasCgroupNsID ? cgroupNsID : nil
            case .time: return hasTimeNsID ? timeNsID : nil
            }
        }
        set {
            switch (kind, newValue) {
            case (.pid, let id?): pidNsID = id
            case (.pid, nil): clearPidNsID()
            case (.net, let id?): netNsID = id
            case (.net, nil): clearNetNsID()
            case (.ipc, let id?): ipcNsID = id
            case (.ipc, nil): clearIpcNsID()
            case (.uts, let id?): utsNsID = id
            case (.uts, nil): clearUtsNsID()
            case (.mnt, let id?): mntNsID = id
            case (.mnt, nil): clearMntNsID()
            case (.user, let id?): userNsID = id
            case (.user, nil): clearUserNsID()
            case (.cgroup, let id?): cgroupNsID = id
            case (.cgroup, nil): clearCgroupNsID()
            case (.time, let id?): timeNsID = id
            case (.time, nil): clearTimeNsID()
            }
        }
    }
}
