import CheckpointArchive
import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Checkpoint OCI image layout", .serialized)
struct OCIImageLayoutTests {
    static let skopeo = "/usr/bin/skopeo"
    static let podman = "/usr/bin/podman"

    private var annotations: [String: String] {
        CheckpointAnnotations.standard(containerName: "archive-counter", runtimeName: "runc", runtimeVersion: "1.1.5",
                                       criuVersion: "31701", engineVersion: "0.1",
                                       rootfsImageName: "localhost/busybox:latest")
    }

    @Test("written image reads back with its annotations; skopeo inspects it")
    func writeReadInspect() throws {
        let scratch = try Scratch()
        let source = scratch.sub("source"), layout = scratch.sub("layout"), back = scratch.sub("back")
        try Fixture.make(at: source, sparse: true)
        try OCIImageLayout.writeImage(archiveDirectory: source, layout: layout, tag: "ckpt", annotations: annotations)
        #expect(annotations["org.criu.checkpoint.container.name"] == "archive-counter")
        #expect(annotations["io.podman.annotations.checkpoint.name"] == "archive-counter")
        #expect(annotations["org.criu.checkpoint.host.arch"] == "amd64")

        let read = try OCIImageLayout.readImage(layout: layout, tag: "ckpt", into: back)
        #expect(read == annotations)
        try Fixture.expectSame(source, back)
        #expect(try lstatOf(back + "/checkpoint/pages-1.img").st_blocks * 512 < 1 << 20, "layer keeps the file sparse")

        let inspect = Cmd.run([Self.skopeo, "inspect", "oci:\(layout):ckpt"])
        try require(inspect, "skopeo inspect")
        let info = try JSONSerialization.jsonObject(with: Data(inspect.out.utf8)) as? [String: Any]
        #expect(info?["Architecture"] as? String == "amd64")
        #expect(info?["Os"] as? String == "linux")
        #expect((info?["Layers"] as? [String])?.count == 1)
        let raw = Cmd.run([Self.skopeo, "inspect", "--raw", "oci:\(layout):ckpt"])
        try require(raw, "skopeo inspect --raw")
        let manifest = try JSONSerialization.jsonObject(with: Data(raw.out.utf8)) as? [String: Any]
        #expect(manifest?["annotations"] as? [String: String] == annotations)
        let layers = manifest?["layers"] as? [[String: Any]]
        #expect(layers?.first?["mediaType"] as? String == "application/vnd.oci.image.layer.v1.tar+gzip")
    }

    @Test("a second tag in the same layout keeps the first; an unknown tag is refused")
    func tags() throws {
        let scratch = try Scratch()
        let source = scratch.sub("source"), layout = scratch.sub("layout")
        try Fixture.make(at: source, sparse: false)
        try OCIImageLayout.writeImage(archiveDirectory: source, layout: layout, tag: "one", annotations: ["k": "1"])
        try OCIImageLayout.writeImage(archiveDirectory: source, layout: layout, tag: "two", annotations: ["k": "2"])
        try OCIImageLayout.writeImage(archiveDirectory: source, layout: layout, tag: "two", annotations: ["k": "3"])
        #expect(try OCIImageLayout.readImage(layout: layout, tag: "one", into: scratch.sub("one")) == ["k": "1"])
        #expect(try OCIImageLayout.readImage(layout: layout, tag: "two", into: scratch.sub("two")) == ["k": "3"])
        let error = #expect(throws: (any Error).self) {
            _ = try OCIImageLayout.readImage(layout: layout, tag: "three", into: scratch.sub("three"))
        }
        #expect("\(error!)" == "OCI layout \(layout) has no image tagged three")
    }

    @Test("a damaged layer blob is refused and nothing is extracted")
    func damagedLayer() throws {
        let scratch = try Scratch()
        let source = scratch.sub("source"), layout = scratch.sub("layout")
        try Fixture.make(at: source, sparse: false)
        try OCIImageLayout.writeImage(archiveDirectory: source, layout: layout, tag: "ckpt", annotations: [:])
        let raw = Cmd.run([Self.skopeo, "inspect", "--raw", "oci:\(layout):ckpt"])
        let manifest = try JSONSerialization.jsonObject(with: Data(raw.out.utf8)) as? [String: Any]
        let digest = try #require((manifest?["layers"] as? [[String: Any]])?.first?["digest"] as? String)
        let blob = layout + "/blobs/sha256/" + digest.dropFirst(7)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: blob))
        bytes[bytes.count / 2] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: blob))
        let before = scratch.listing()
        let error = #expect(throws: (any Error).self) {
            _ = try OCIImageLayout.readImage(layout: layout, tag: "ckpt", into: scratch.sub("out"))
        }
        #expect("\(error!)".contains("layer \(digest)"), "\(error!)")
        #expect(scratch.listing() == before)
    }

    @Test("skopeo copies the image into podman's store; podman shows the annotations")
    func podmanStore() throws {
        let scratch = try Scratch()
        let source = scratch.sub("source"), layout = scratch.sub("layout"), exported = scratch.sub("exported")
        let image = "localhost/archive-test:1"
        try Fixture.make(at: source, sparse: false)
        try OCIImageLayout.writeImage(archiveDirectory: source, layout: layout, tag: "ckpt", annotations: annotations)
        try require(Cmd.run([Self.skopeo, "copy", "-q", "oci:\(layout):ckpt", "containers-storage:\(image)"], timeout: 300), "skopeo copy into containers-storage")
        defer { Cmd.run([Self.podman, "rmi", "-f", image]) }
        let inspect = Cmd.run([Self.podman, "image", "inspect", image])
        try require(inspect, "podman image inspect")
        let images = try JSONSerialization.jsonObject(with: Data(inspect.out.utf8)) as? [[String: Any]]
        let shown = images?.first?["Annotations"] as? [String: String] ?? [:]
        #expect(shown["io.podman.annotations.checkpoint.name"] == "archive-counter")
        #expect(shown["org.criu.checkpoint.container.name"] == "archive-counter")

        // And back out of podman's store: skopeo's own layout of it reads with readImage.
        try require(Cmd.run([Self.skopeo, "copy", "-q", "containers-storage:\(image)", "oci:\(exported):back"], timeout: 300), "skopeo copy out")
        let read = try OCIImageLayout.readImage(layout: exported, tag: "back", into: scratch.sub("back"))
        #expect(read["org.criu.checkpoint.container.name"] == "archive-counter")
        try Fixture.expectSame(source, scratch.sub("back"))
    }
}
