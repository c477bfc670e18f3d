import Foundation
import SystemTestSupport
import Engine

/// Decodes an image with CRIU's crit; throws with crit's message when it cannot.
@discardableResult
func critDecode(_ path: String) throws -> [String: Any] {
    let r = try run(["/usr/bin/python3", "/usr/bin/crit", "decode", "-i", path])
    guard r.status == 0, let json = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any] else {
        throw CheckpointError(.image, "crit decode \(path): exit \(r.status): \(r.err)")
    }
    return json
}
