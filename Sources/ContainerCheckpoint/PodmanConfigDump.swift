import Foundation
import CheckpointArchive
import LinuxKernel

/// config.dump for a podman container: libpod's ContainerConfig JSON, which `podman
/// container restore --import` decodes to re-create the container (pkg/checkpoint
/// CRImportCheckpoint, then libpod's RestoreContainer). Built from `podman container
/// inspect` and the bundle's config.json; podman replaces the spec with spec.dump, resets
/// lock, log, pid files, static and shm directories and regenerates the cgroup path, so
/// those are carried only as they were. Our own keys ride along (Go's decoder skips them):
/// ContainerConfigDump reads the same file.
enum PodmanConfigDump {
    static func make(_ c: PodmanContainer, spec: [String: Any], checkpointedTime: String) -> [String: Any] {
        let config = c.config, host = c.hostConfig
        var dump: [String: Any] = [
            "spec": spec,
            "id": c.id,
            "name": c.name,
            "lockID": 0,
            "rootfsImageID": c.imageID,
            "rootfsImageName": c.imageName,
            "RawImageName": c.imageName,
            "idMappingsOptions": ["HostUIDMapping": true, "HostGIDMapping": true, "UIDMap": NSNull(), "GIDMap": NSNull()],
            "Dependencies": NSNull(),
            "staticDir": c.staticDir,
            "shmSize": host["ShmSize"] as? Int ?? 65_536_000,
            "secretsPath": c.staticDir + "/secrets",
            "createWorkingDir": true,
            "passwd": config["Passwd"] as? Bool ?? true,
            "privileged": host["Privileged"] as? Bool ?? false,
            // The network namespace is the container's own (none) or the host's: podman
            // creates none for either.
            "createNetNS": false,
            "UseImageResolvConf": false,
            "UseImageHosts": false,
            "stopSignal": config["StopSignal"] as? Int ?? 15,
            "stopTimeout": config["StopTimeout"] as? Int ?? 10,
            "createdTime": c.created,
            "cgroupManager": host["CgroupManager"] as? String ?? "cgroupfs",
            "cgroupsMode": "enabled",
            "logDriver": (host["LogConfig"] as? [String: Any])?["Type"] as? String ?? "k8s-file",
            "logPath": "",
            "conmonPidFile": c.inspect["ConmonPidFile"] as? String ?? "",
            "pid_file": c.inspect["PidFile"] as? String ?? "",
            "runtime": c.inspect["OCIRuntime"] as? String ?? "runc",
            "umask": config["Umask"] as? String ?? "0022",
            "sdnotifyMode": config["sdNotifyMode"] as? String ?? "container",
            "isService": c.inspect["IsService"] as? Bool ?? false,
            // ocicheckpoint's own keys (ContainerConfigDump).
            "checkpointEngine": "ocicheckpoint",
            "checkpointedTime": checkpointedTime,
        ]
        if let command = config["CreateCommand"] as? [String] { dump["CreateCommand"] = command }
        if let cmd = config["Cmd"] as? [String] {
            dump["command"] = cmd
            // inspect joins the entrypoint into one string; the spec's args hold it intact.
            let args = (spec["process"] as? [String: Any])?["args"] as? [String] ?? []
            if args.count > cmd.count, Array(args.suffix(cmd.count)) == cmd { dump["entrypoint"] = Array(args.prefix(args.count - cmd.count)) }
        }
        if let user = config["User"] as? String, !user.isEmpty { dump["user"] = user }
        if let groups = host["GroupAdd"] as? [String], !groups.isEmpty { dump["groups"] = groups }
        if let labels = config["Labels"] as? [String: String], !labels.isEmpty { dump["labels"] = labels }
        if config["OpenStdin"] as? Bool == true { dump["stdin"] = true }
        if let timeout = config["Timeout"] as? Int, timeout > 0 { dump["timeout"] = timeout }
        // The cgroup parent is what the spec's cgroupsPath sits in (inspect hides the default).
        if let linux = spec["linux"] as? [String: Any], let path = linux["cgroupsPath"] as? String, !path.contains(":") {
            dump["cgroupParent"] = (path as NSString).deletingLastPathComponent
        }
        let binds = (c.inspect["Mounts"] as? [[String: Any]] ?? []).compactMap { $0["Destination"] as? String }
        if !binds.isEmpty { dump["userVolumes"] = binds }
        return dump
    }

    static func write(_ dump: [String: Any], to dir: String) throws {
        let data: Data
        do { data = try JSONSerialization.data(withJSONObject: dump, options: [.prettyPrinted, .sortedKeys]) } catch {
            throw CheckpointError(.invalidState, "config.dump: cannot encode podman's container configuration: \(error)")
        }
        try writeFile(dir + "/" + CheckpointLayout.config, data)
    }
}
