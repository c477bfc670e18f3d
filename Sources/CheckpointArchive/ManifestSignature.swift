import LinuxKernel
import Foundation

/// The member (or file) right after a manifest: an Ed25519 signature over the manifest's exact
/// bytes and the signer's public key. The key travels for `inspect`; trust comes only from
/// the key given to --verify, whose fingerprint must match.
struct ManifestSignature: Codable {
    static let memberName = "ocicheckpoint.manifest.sig"
    static let formatName = "ocicheckpoint-signature"

    var format = ManifestSignature.formatName
    var version = 1
    var algorithm = "ed25519"
    /// Base64 of the raw 32-byte public key.
    var publicKey: String
    /// "sha256:" and the SHA-256 of the raw public key in hex.
    var fingerprint: String
    /// Base64 of the 64-byte signature over the manifest's bytes.
    var signature: String

    static func sign(_ manifest: Data, with key: SigningKey) throws -> Data {
        let sig = ManifestSignature(publicKey: Data(key.publicKey).base64EncodedString(), fingerprint: key.fingerprint,
                                    signature: try key.sign(manifest).base64EncodedString())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try encoder.encode(sig)
    }

    /// `subject` names what is read: "archive PATH", "image directory DIR".
    static func decode(_ data: Data, subject: String) throws -> ManifestSignature {
        guard let sig = try? JSONDecoder().decode(ManifestSignature.self, from: data),
              sig.format == formatName, sig.version == 1, sig.algorithm == "ed25519",
              let raw = Data(base64Encoded: sig.publicKey), raw.count == 32,
              Ed25519.fingerprint([UInt8](raw)) == sig.fingerprint else {
            throw ArchiveError.damaged(subject, "its signature is not an ocicheckpoint Ed25519 signature")
        }
        return sig
    }

    /// Refuses a missing signature, another signer, or a manifest changed after signing.
    static func verify(manifest: Data, signature: Data?, key: VerifyingKey, subject: String) throws {
        guard let signature else {
            throw ArchiveError.damaged(subject, "it is not signed (--verify needs a signature by \(key.fingerprint))")
        }
        let sig = try decode(signature, subject: subject)
        guard sig.fingerprint == key.fingerprint else {
            throw ArchiveError.damaged(subject, "it is signed by another key (\(sig.fingerprint), not \(key.fingerprint))")
        }
        guard let bytes = Data(base64Encoded: sig.signature), key.verify(bytes, of: manifest) else {
            throw ArchiveError.damaged(subject, "its manifest was changed after signing (the signature by \(key.fingerprint) does not match it)")
        }
    }
}

/// What an archive or image directory says about its signer; nothing here is verified.
public enum Signer: Equatable, Sendable, CustomStringConvertible {
    case unsigned
    case signed(fingerprint: String)

    public var description: String {
        switch self {
        case .unsigned: return "not signed"
        case let .signed(fingerprint): return "ed25519 \(fingerprint)"
        }
    }
}

/// What an unpack does about signatures.
public enum SignatureCheck {
    /// Any signature is carried along unchecked (the caller says it was not verified).
    case none
    /// The manifest must be signed by this key.
    case require(VerifyingKey)
}
