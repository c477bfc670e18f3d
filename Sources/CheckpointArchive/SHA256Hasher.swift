import CArchive
import Foundation

/// SHA-256 through OpenSSL's EVP interface, fed block by block.
final class SHA256Hasher {
    private let context: OpaquePointer

    init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    func update(_ bytes: UnsafeRawPointer, count: Int) {
        if count > 0 { EVP_DigestUpdate(context, bytes, count) }
    }

    func update(_ data: Data) {
        data.withUnsafeBytes { update($0.baseAddress!, count: $0.count) }
    }

    /// The bytes of a hole: a sparse file is summed as the zeros it reads back as.
    func update(zeros count: Int64) {
        var left = count
        while left > 0 {
            let step = Int(min(left, Int64(ZeroBlock.size)))
            update(ZeroBlock.bytes, count: step)
            left -= Int64(step)
        }
    }

    /// Lowercase hex digest; the hasher is spent afterwards.
    func finish() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    static func digest(_ data: Data) -> String {
        let hasher = SHA256Hasher()
        hasher.update(data)
        return hasher.finish()
    }
}

enum ZeroBlock {
    static let size = 1 << 20
    static let bytes: UnsafeRawPointer = UnsafeRawPointer(calloc(size, 1)!)
}
