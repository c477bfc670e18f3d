// A runc container checkpointed into an OCI image layout (`checkpoint --export-image
// DIR:TAG`), which skopeo reads with its annotations, and restored from it
// (`restore --import-image DIR:TAG`) as a new container that counts on.

import Foundation
import SystemTestSupport
import Testing

@Suite(.serialized, .enabled(if: Env.usable && FileManager.default.isExecutableFile(atPath: "/usr/bin/skopeo"), "needs root, runc and skopeo"))
struct ImageLayoutTests {
    @Test func exportImageThenImportImage() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = scratch.newID()
        let bundle = try Bundle.make(at: scratch.sub("bundle-\(id)"), args: countingScript())
        let run = Cmd.sh("\(Env.runc) run -d --bundle \(bundle.path) \(id) </dev/null >/dev/null 2>&1", timeout: 30)
        try #require(run.ok, "runc run: \(run)")
        try #require(waitFor(10) { bundle.count.count >= 5 }, "the container does not count")

        let layout = scratch.sub("layout")
        let cp = Cmd.run([Env.binary, "checkpoint", "--export-image", layout + ":ckpt", id], timeout: 120)
        try #require(cp.ok, "checkpoint: \(cp)")
        let last = bundle.lastCount
        #expect(Runc(id: id).status != "running")
        _ = Cmd.run([Env.runc, "delete", "-f", id])

        let raw = Cmd.run(["/usr/bin/skopeo", "inspect", "--raw", "oci:\(layout):ckpt"])
        try #require(raw.ok, "skopeo inspect: \(raw)")
        let manifest = try JSONSerialization.jsonObject(with: Data(raw.out.utf8)) as? [String: Any]
        let annotations = manifest?["annotations"] as? [String: String] ?? [:]
        #expect(annotations["org.criu.checkpoint.container.name"] == id, "\(annotations)")
        #expect(annotations["io.podman.annotations.checkpoint.name"] == id)
        #expect(annotations["org.criu.checkpoint.runtime.name"] == "runc")
        let config = Cmd.run(["/usr/bin/skopeo", "inspect", "oci:\(layout):ckpt"])
        #expect(config.ok && config.out.contains("\"Layers\""), "skopeo inspect: \(config)")

        let newID = scratch.newID()
        let newBundle = scratch.sub("restored")
        let rs = Cmd.run([Env.binary, "restore", "--import-image", layout + ":ckpt", "--name", newID, "--bundle", newBundle], timeout: 120)
        try #require(rs.ok, "restore --import-image: \(rs)\n\(tail(newBundle + "/restore.log"))")
        #expect(Runc(id: newID).status == "running")
        let restored = Bundle(path: newBundle)
        #expect(waitFor(10) { restored.lastCount >= last + 4 }, "does not count on from \(last): \(restored.count.suffix(5))")
        #expect(consecutive(restored.count, from: 1), "count around \(last): \(restored.count.suffix(12))")
    }
}
