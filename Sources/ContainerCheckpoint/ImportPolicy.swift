import Foundation
import LinuxKernel
import OCISpec

/// What an imported archive may ask of this host. An archive is untrusted by default:
/// its manifest proves it is intact, not who made it, and `restore --import` runs as root.
/// So the restored container takes from spec.dump and config.dump only what stays inside
/// the container; anything that reaches the host (hooks, which runc runs as root; host
/// bind mounts; a host directory as the rootfs base; device nodes and setuid files in the
/// rootfs; privileges beyond the usual container defaults; host namespaces) is refused
/// with the setting named, unless the user names it on the command line or trusts the
/// archive as a whole.
public struct ImportPolicy: Sendable {
    /// Accept everything the archive asks (hooks, privileges, devices, its rootfs base).
    public var trustArchive = false
    /// Host paths the archive's bind mounts may use (--allow-bind).
    public var allowedBindSources: Set<String> = []

    public init(trustArchive: Bool = false, allowedBindSources: Set<String> = []) {
        self.trustArchive = trustArchive
        self.allowedBindSources = allowedBindSources
    }

    /// The capabilities runc's, podman's and Docker's default containers get (their union).
    static let defaultCapabilities: Set<String> = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]

    /// Namespaces a container must have of its own: sharing the host's, or joining one by
    /// path, reaches outside it.
    static let ownNamespaces: [NamespaceType] = [.pid, .network, .mount, .ipc, .uts]

    /// Throws for the first thing in `spec` the policy refuses; `archive` names the source.
    public func check(_ spec: Spec, archive: String) throws {
        if trustArchive { return }
        func refuse(_ what: String, _ hint: String = "pass --trust-archive to accept what the archive asks") throws -> Never {
            throw CheckpointError(.invalidArgument, "\(archive): \(what): refused in an untrusted import (\(hint))")
        }
        if let hooks = spec.hooks {
            for (stage, list) in hooks.byStage where !list.isEmpty {
                try refuse("spec.dump has \(stage.rawValue) hooks (\(list.map(\.path).joined(separator: ", "))), which runc would run as root on this host")
            }
        }
        for m in spec.mounts ?? [] where m.type == "bind" || (m.options ?? []).contains(where: { $0 == "bind" || $0 == "rbind" }) {
            let source = m.source ?? ""
            if !allowedBindSources.contains(source) {
                try refuse("spec.dump bind-mounts host path \(source) at \(m.destination)",
                           "pass --allow-bind \(source) to expose it, or --trust-archive")
            }
        }
        if let caps = spec.process?.capabilities {
            let sets: [(String, [String]?)] = [("bounding", caps.bounding), ("effective", caps.effective),
                                               ("permitted", caps.permitted), ("inheritable", caps.inheritable),
                                               ("ambient", caps.ambient)]
            for (name, list) in sets {
                let extra = (list ?? []).filter { !Self.defaultCapabilities.contains($0) }
                if !extra.isEmpty { try refuse("process.capabilities.\(name) adds \(extra.joined(separator: ", "))") }
            }
        }
        if spec.process?.apparmorProfile == "unconfined" { try refuse("process.apparmorProfile is unconfined") }
        if let devices = spec.linux?.devices, !devices.isEmpty {
            try refuse("linux.devices creates \(devices.map(\.path).joined(separator: ", "))")
        }
        for rule in spec.linux?.resources?.devices ?? [] where rule.allow && (rule.type == nil || rule.type == "a" || rule.major == nil) {
            try refuse("linux.resources.devices allows every \(rule.type == "b" ? "block " : rule.type == "c" ? "character " : "")device (\(rule.access ?? "rwm"))")
        }
        let namespaces = spec.linux?.namespaces ?? []
        for type in Self.ownNamespaces {
            guard let ns = namespaces.first(where: { $0.type == type }) else {
                try refuse("the container shares the host's \(type.rawValue) namespace")
            }
            if let path = ns.path, !path.isEmpty { try refuse("the container joins the \(type.rawValue) namespace at \(path)") }
        }
    }
}
