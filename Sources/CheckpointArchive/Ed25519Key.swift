import CArchive
import LinuxKernel
import Foundation

/// An Ed25519 key pair read from a PEM file as `openssl genpkey -algorithm ed25519` writes it
/// (PKCS#8 PRIVATE KEY), signing through OpenSSL's one-shot EVP_DigestSign.
public final class SigningKey {
    let pkey: OpaquePointer
    /// The raw 32-byte public key.
    public let publicKey: [UInt8]
    /// "sha256:" and the SHA-256 of the raw public key in hex.
    public var fingerprint: String { Ed25519.fingerprint(publicKey) }

    public init(file: String) throws {
        pkey = try Ed25519.readPEM(file, what: "signing key") { bio in
            // A null password callback would prompt on the terminal for an encrypted key.
            PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil)
        }
        publicKey = try Ed25519.rawPublicKey(pkey, file: file)
    }

    deinit { EVP_PKEY_free(pkey) }

    func sign(_ data: Data) throws -> Data {
        let context = EVP_MD_CTX_new()!
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = signature.count
        let ok = data.withUnsafeBytes { bytes in
            EVP_DigestSignInit(context, nil, nil, nil, pkey) == 1
                && EVP_DigestSign(context, &signature, &length, bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count) == 1
        }
        guard ok else { throw CheckpointError(.invalidState, "sign: \(Ed25519.opensslError())") }
        return Data(signature[..<length])
    }
}

/// An Ed25519 public key from a PEM file as `openssl pkey -pubout` writes it (SPKI PUBLIC
/// KEY); a private key file is accepted too, its public half is used.
public final class VerifyingKey {
    let pkey: OpaquePointer
    public let publicKey: [UInt8]
    public var fingerprint: String { Ed25519.fingerprint(publicKey) }

    public init(file: String) throws {
        let text = FileManager.default.contents(atPath: file).map { String(decoding: $0, as: UTF8.self) } ?? ""
        if text.contains("PRIVATE KEY") {
            let signing = try SigningKey(file: file)
            EVP_PKEY_up_ref(signing.pkey)
            pkey = signing.pkey
        } else {
            pkey = try Ed25519.readPEM(file, what: "public key") { PEM_read_bio_PUBKEY($0, nil, nil, nil) }
        }
        publicKey = try Ed25519.rawPublicKey(pkey, file: file)
    }

    deinit { EVP_PKEY_free(pkey) }

    func verify(_ signature: Data, of data: Data) -> Bool {
        let context = EVP_MD_CTX_new()!
        defer { EVP_MD_CTX_free(context) }
        let ok = signature.withUnsafeBytes { sig in
            data.withUnsafeBytes { bytes in
                EVP_DigestVerifyInit(context, nil, nil, nil, pkey) == 1
                    && EVP_DigestVerify(context, sig.bindMemory(to: UInt8.self).baseAddress, sig.count,
                                        bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count) == 1
            }
        }
        ERR_clear_error()
        return ok
    }
}

enum Ed25519 {
    static func fingerprint(_ publicKey: [UInt8]) -> String {
        "sha256:" + SHA256Hasher.digest(Data(publicKey))
    }

    static func readPEM(_ file: String, what: String, _ read: (OpaquePointer) -> OpaquePointer?) throws -> OpaquePointer {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CheckpointError(.notFound, "\(what) \(file): cannot read it")
        }
        let key: OpaquePointer? = data.withUnsafeBytes { bytes in
            guard let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count)) else { return nil }
            defer { BIO_free(bio) }
            return read(bio)
        }
        guard let key else {
            throw CheckpointError(.invalidArgument, "\(what) \(file): not a PEM \(what == "public key" ? "PUBLIC KEY" : "PRIVATE KEY") (unencrypted) that OpenSSL reads: \(opensslError())")
        }
        guard EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 else {
            EVP_PKEY_free(key)
            throw CheckpointError(.invalidArgument, "\(what) \(file): not an Ed25519 key (make one with openssl genpkey -algorithm ed25519)")
        }
        return key
    }

    static func rawPublicKey(_ pkey: OpaquePointer, file: String) throws -> [UInt8] {
        var raw = [UInt8](repeating: 0, count: 32)
        var length = raw.count
        guard EVP_PKEY_get_raw_public_key(pkey, &raw, &length) == 1, length == 32 else {
            throw CheckpointError(.invalidArgument, "key \(file): cannot read its Ed25519 public key: \(opensslError())")
        }
        return raw
    }

    static func opensslError() -> String {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return "unknown OpenSSL error" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(cString: buffer)
    }
}
