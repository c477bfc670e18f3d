import Foundation
import LinuxKernel
import CheckpointArchive

/// Podman's containers: found by podman's name or id, and described in podman's own
/// archive layout so that `podman container restore --import` takes the archive.
extension ContainerCheckpointer {
    /// runc's state of the container, and podman's view when podman made it. A name runc
    /// does not know is asked of podman (when installed), which tells the full id runc uses.
    func locate(_ id: String) throws -> (Runc.State?, PodmanContainer?) {
        if let state = try runc.state(id) {
            guard PodmanContainer.isPodmanBundle(state.bundle) else { return (state, nil) }
            return (state, try PodmanContainer.find(state.id))
        }
        guard let podman = try PodmanContainer.find(id) else { return (nil, nil) }
        guard let state = try runc.state(podman.id) else {
            throw CheckpointError(.invalidState, "podman container \(id): runc does not know it (state directory \(runc.root ?? "/run/runc")); is it running?")
        }
        return (state, podman)
    }

    /// podman's own /dev/shm for the container (a tmpfs in its static directory), held from
    /// before the dump; nil when the container shares another /dev/shm (--ipc host, none).
    func holdShm(_ podman: PodmanContainer, bundle: String) throws -> ShmSnapshot? {
        let spec = try podmanSpec(podman, bundle: bundle).spec
        let mounts = spec["mounts"] as? [[String: Any]] ?? []
        guard let source = mounts.first(where: { $0["destination"] as? String == "/dev/shm" })?["source"] as? String,
              source.hasPrefix(podman.staticDir + "/") else { return nil }
        return try ShmSnapshot(mountedAt: source)
    }

    private func podmanSpec(_ podman: PodmanContainer, bundle: String) throws -> (spec: [String: Any], data: Data) {
        let specPath = bundle + "/config.json"
        guard let data = FileManager.default.contents(atPath: specPath),
              let spec = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CheckpointError(.notFound, "podman container \(podman.name): no readable \(specPath)")
        }
        return (spec, data)
    }

    /// config.dump in libpod's format, spec.dump as runc ran it, the image's changes from
    /// the overlay upper directory, and /dev/shm when podman gave the container its own.
    func describe(_ podman: PodmanContainer, bundle: String, shm: ShmSnapshot?, into staging: String) throws {
        let (spec, specData) = try podmanSpec(podman, bundle: bundle)
        try PodmanConfigDump.write(PodmanConfigDump.make(podman, spec: spec, checkpointedTime: ContainerConfigDump.now()), to: staging)
        try writeFile(staging + "/" + CheckpointLayout.spec, specData)
        let mounts = spec["mounts"] as? [[String: Any]] ?? []
        let binds = Set(mounts.filter { $0["type"] as? String == "bind" }.compactMap { $0["destination"] as? String })
        let diff = try OverlayDiff(upper: podman.upperDir, lowers: podman.lowerDirs, bindMounts: binds)
        try TarFile.write(root: podman.upperDir, paths: diff.changed, to: staging + "/" + CheckpointLayout.rootfsDiff)
        try diff.writeDeletedFiles(to: staging + "/" + CheckpointLayout.deletedFiles)
        try shm?.write(to: staging + "/" + CheckpointLayout.devShm)
    }
}
