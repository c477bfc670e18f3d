import Foundation
import LinuxKernel
import Images
import CheckpointArchive

/// A checkpoint as an OCI image (`--export-image DIR[:TAG]`): one layer holding the archive's
/// members at its root, annotated as checkpointctl and podman expect.
enum CheckpointImage {
    static let defaultTag = "latest"

    static func split(_ reference: String) -> (layout: String, tag: String) {
        // DIR:TAG, where DIR itself has no colon (as skopeo's oci: transport).
        guard let colon = reference.lastIndex(of: ":"), !reference[colon...].contains("/") else { return (reference, defaultTag) }
        return (String(reference[..<colon]), String(reference[reference.index(after: colon)...]))
    }

    /// `rootfsImage` (name, id): the image a podman container ran on, which podman's
    /// restore from a checkpoint image re-creates the container from.
    static func export(_ staging: String, to reference: String, containerName: String, runtime: String,
                       rootfsImage: (name: String, id: String)? = nil, signingKey: SigningKey? = nil) throws {
        let (layout, tag) = split(reference)
        let annotations = CheckpointAnnotations.standard(
            containerName: containerName, runtimeName: runtime, runtimeVersion: runtimeVersion(runtime),
            criuVersion: String(CriuRelease.number), engineVersion: "0.1.0", rootfsImageName: rootfsImage?.name, rootfsImageID: rootfsImage?.id)
        try OCIImageLayout.writeImage(archiveDirectory: staging, layout: layout, tag: tag, annotations: annotations,
                                      signingKey: signingKey)
    }

    static func verifySignature(_ reference: String, key: VerifyingKey) throws {
        let (layout, tag) = split(reference)
        try OCIImageLayout.verifySignature(layout: layout, tag: tag, key: key)
    }

    static func `import`(_ reference: String, into bundle: String, signature: SignatureCheck = .none) throws -> Signer {
        let (layout, tag) = split(reference)
        return try OCIImageLayout.readImage(layout: layout, tag: tag, into: bundle, signature: signature).signer
    }

    private static func runtimeVersion(_ runtime: String) -> String {
        guard let path = Runc.find(), let r = try? Subprocess.run([path, "--version"]), r.ok else { return "" }
        return r.output.split(separator: "\n").first.map { String($0.split(separator: " ").last ?? "") } ?? ""
    }
}
