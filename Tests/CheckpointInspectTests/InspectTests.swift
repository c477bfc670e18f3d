// `ocicheckpoint inspect` on a real dump of a two-process tree, laid out as a podman
// checkpoint archive: the tree view, --files, --stats, --format json, the members the
// lead extracts from an archive, and the errors.

import CheckpointInspect
import Foundation
import SystemTestSupport
import Testing

@Suite(.serialized, .enabled(if: Env.canDump, "needs root and cc"))
struct InspectTests {
    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Env.binary),
                     "no CLI at \(Env.binary): swift build first, or set OCICHECKPOINT_BIN")
    }

    private func inspect(_ args: [String]) throws -> Output {
        let o = Cmd.cli(["inspect"] + args)
        try #require(o.ok, "\(o)")
        return o
    }

    /// The tree line of `pid` and its indentation (characters before "[").
    private func line(of pid: Int32, in text: String) -> (text: String, depth: Int)? {
        for l in text.split(separator: "\n") {
            if let r = l.range(of: "[\(pid)]  ") {
                return (String(l[r.upperBound...]), l.distance(from: l.startIndex, to: r.lowerBound))
            }
        }
        return nil
    }

    @Test func treeShowsContainerSizesPidsAndCommandLines() throws {
        let t = try DumpedTree.make()
        defer { t.tearDown() }
        let o = try inspect([t.dir, "--ps-tree"])
        let text = o.out
        #expect(text.hasPrefix(DumpedTree.containerName + "\n"), "\(text)")
        for expected in ["Image: \(DumpedTree.image)", "ID: \(DumpedTree.containerID)", "Runtime: runc",
                         "Created: 2026-11-22T10:00:00.123456789Z", "Engine: Podman", "Checkpointed: 2026-11-22T10:05:00Z"] {
            #expect(text.contains(expected), "missing \"\(expected)\" in\n\(text)")
        }
        // Sizes are the files' own.
        let sizes = fileSizes(t.images)
        let total = sizes.values.reduce(0, +)
        let pages = sizes.filter { $0.key.hasPrefix("pages-") }.values.reduce(0, +)
        let diff = fileSizes(t.dir)["rootfs-diff.tar"] ?? 0
        #expect(pages > 0 && diff > 0)
        #expect(text.contains("Checkpoint size: \(humanBytes(total))"), "total \(total) in\n\(text)")
        #expect(text.contains("Memory pages size: \(humanBytes(pages))"), "pages \(pages) in\n\(text)")
        #expect(text.contains("Root FS diff size: \(humanBytes(diff))"), "diff \(diff) in\n\(text)")

        let root = try #require(line(of: t.root, in: text), "no root \(t.root) in\n\(text)")
        let child = try #require(line(of: t.child, in: text), "no child \(t.child) in\n\(text)")
        #expect(root.text == "\(t.helper) \(t.work)")
        #expect(child.text == "inspect-tree --child marker-arg two words")
        #expect(child.depth == root.depth + 4, "the child is not one level under the root:\n\(text)")
        let rootAt = text.range(of: "[\(t.root)]")!.lowerBound, childAt = text.range(of: "[\(t.child)]")!.lowerBound
        #expect(rootAt < childAt)
    }

    @Test func filesAndStatsOfTheDumpedTree() throws {
        let t = try DumpedTree.make()
        defer { t.tearDown() }
        let text = try inspect([t.dir, "--files", "--stats"]).out
        // Both processes hold the marker file as fd 7; the pipe between them has the same inode.
        let markerLines = text.split(separator: "\n").filter { $0.hasSuffix("[REG 7]  \(t.marker)") }
        #expect(markerLines.count == 2, "marker fd 7 not listed for both processes:\n\(text)")
        #expect(text.contains("[cwd]  \(t.work)"), "\(text)")
        #expect(text.contains("[root]  /"), "\(text)")
        let pipes = text.split(separator: "\n").compactMap { l -> String? in
            guard l.contains("[PIPE 4]") || l.contains("[PIPE 3]"), let r = l.range(of: "pipe:[") else { return nil }
            return String(l[r.lowerBound...])
        }
        #expect(pipes.count == 2 && pipes[0] == pipes[1], "the pipe between root (fd 4) and child (fd 3): \(pipes)\n\(text)")
        // Without --ps-tree the process lines carry comm, not the command line.
        #expect(line(of: t.child, in: text)?.text == "inspect-tree")
        for label in ["CRIU dump statistics", "Freezing time: ", "Frozen time: ", "Memdump time: ", "Pages scanned: ", "Pages written: "] {
            #expect(text.contains(label), "missing \(label) in\n\(text)")
        }
    }

    @Test func jsonCarriesTheSameData() throws {
        let t = try DumpedTree.make()
        defer { t.tearDown() }
        let json = try inspect([t.dir, "--all", "--format", "json"]).out
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8))
        let list = try #require(parsed as? [[String: Any]], "not an array of objects: \(json)")
        try #require(list.count == 1)
        let doc = list[0]
        #expect(doc["container_name"] as? String == DumpedTree.containerName)
        #expect(doc["id"] as? String == DumpedTree.containerID)
        #expect(doc["image"] as? String == DumpedTree.image)
        #expect(doc["runtime"] as? String == "runc")
        #expect(doc["engine"] as? String == "Podman")

        let sizes = fileSizes(t.images)
        let pages = sizes.filter { $0.key.hasPrefix("pages-") }.values.reduce(0, +)
        let size = try #require(doc["checkpoint_size"] as? [String: Any])
        #expect((size["total_size"] as? NSNumber)?.uint64Value == sizes.values.reduce(0, +))
        #expect((size["memory_pages_size"] as? NSNumber)?.uint64Value == pages)
        #expect((size["root_fs_diff_size"] as? NSNumber)?.uint64Value == fileSizes(t.dir)["rootfs-diff.tar"])

        // stats-dump's pages written are exactly the pages images.
        let stats = try #require(doc["statistics"] as? [String: Any], "\(json)")
        #expect((stats["pages_written"] as? NSNumber)?.uint64Value == pages / 4096)
        #expect(((stats["frozen_time"] as? NSNumber)?.uint64Value ?? 0) > 0)

        let tree = try #require(doc["process_tree"] as? [String: Any])
        #expect((tree["pid"] as? NSNumber)?.int32Value == t.root)
        #expect(tree["arguments"] as? [String] == [t.helper, t.work])
        #expect(tree["task_state"] as? String == "alive")
        let children = try #require(tree["children"] as? [[String: Any]])
        #expect(children.count == 1)
        #expect((children.first?["pid"] as? NSNumber)?.int32Value == t.child)
        #expect((children.first?["ppid"] as? NSNumber)?.int32Value == t.root)
        #expect(children.first?["arguments"] as? [String] == ["inspect-tree", "--child", "marker-arg", "two words"])
        #expect(children.first?["cmdline"] as? String == "inspect-tree --child marker-arg two words")
        #expect(children.first?["command"] as? String == "inspect-tree")
        let env = try #require(tree["environment_variables"] as? [String: String])
        #expect(env["PATH"] == ProcessInfo.processInfo.environment["PATH"])

        let fds = try #require(doc["file_descriptors"] as? [[String: Any]])
        #expect(fds.count == 2)
        for entry in fds {
            let files = entry["open_files"] as? [[String: String]] ?? []
            #expect(files.contains { $0["fd"] == "7" && $0["type"] == "REG" && $0["path"] == t.marker }, "\(entry)")
        }
        // A host tree has no mountpoints image: the mounts come from spec.dump.
        let mounts = try #require(doc["mounts"] as? [[String: String]])
        #expect(mounts == [["destination": "/proc", "type": "proc", "source": "proc", "origin": "spec.dump"]])

        // The tree view of the same checkpoint shows the same processes and sizes.
        let text = try inspect([t.dir, "--all"]).out
        #expect(line(of: t.child, in: text)?.text == "inspect-tree --child marker-arg two words")
        #expect(text.contains("Memory pages size: \(humanBytes(pages))"))
    }

    /// What the lead does with an archive: extract only the members `neededMembers`
    /// chooses, pass the archive's sizes, and get the same report as from everything.
    @Test(arguments: ["ps-tree", "files", "stats-mounts", "summary"])
    func neededMembersGiveTheSameReport(_ what: String) throws {
        let t = try DumpedTree.make()
        defer { t.tearDown() }
        var options = InspectOptions()
        switch what {
        case "ps-tree": options.psTree = true; options.commandLines = true
        case "files": options.psTree = true; options.files = true
        case "stats-mounts": options.stats = true; options.mounts = true
        default: break
        }
        var all: [String: UInt64] = [:]
        for (n, s) in fileSizes(t.dir) { all["./" + n] = s }
        for (n, s) in fileSizes(t.images) { all["./checkpoint/" + n] = s }
        let needed = Inspector.neededMembers(options)
        let partial = t.scratch.sub("partial")
        try FileManager.default.createDirectory(atPath: partial + "/checkpoint", withIntermediateDirectories: true)
        var copied: [String] = []
        for name in all.keys.sorted() where needed(name) {
            let relative = String(name.dropFirst(2))
            // -p: an archive keeps the times (inventory.img's is the checkpoint time).
            let cp = Cmd.run(["/bin/cp", "-p", t.dir + "/" + relative, partial + "/" + relative])
            try #require(cp.ok, "\(cp)")
            copied.append(relative)
        }
        #expect(copied.contains("checkpoint/inventory.img"))
        #expect(copied.contains { $0.hasPrefix("checkpoint/pages-") } == (what == "ps-tree"), "\(copied)")
        #expect(!copied.contains("rootfs-diff.tar"), "\(copied)")
        let full = try Inspector(directory: t.dir).inspect(options)
        let fromPartial = try Inspector(directory: partial, memberSizes: all).inspect(options)
        #expect(fromPartial == full, "\(copied)")
        if what == "ps-tree" { #expect(full.processTree?.children?.first?.arguments?.last == "two words") }
    }

    @Test func missingMembersAreToleratedAndPidsFiltered() throws {
        let t = try DumpedTree.make()
        defer { t.tearDown() }
        // A bare image directory (dump -D) is a checkpoint too, without container metadata.
        let bare = try inspect([t.images, "--ps-tree"]).out
        #expect(bare.hasPrefix("Container\n") && !bare.contains("Image: "), "\(bare)")
        // Without config.dump, the checkpoint time is when the dump wrote inventory.img.
        let written = try FileManager.default.attributesOfItem(atPath: t.images + "/inventory.img")[.modificationDate] as! Date
        let iso = ISO8601DateFormatter()
        #expect(bare.contains("Checkpointed: \(iso.string(from: written))\n"), "\(bare)")
        #expect(line(of: t.child, in: bare)?.text == "inspect-tree --child marker-arg two words")
        // Without the pages, the command line falls back to comm.
        for name in fileSizes(t.images).keys where name.hasPrefix("pages-") { unlink(t.images + "/" + name) }
        let noPages = try inspect([t.dir, "--ps-tree", "-p", "\(t.child)"]).out
        #expect(line(of: t.child, in: noPages)?.text == "inspect-tree", "\(noPages)")
        #expect(line(of: t.root, in: noPages) == nil, "-p \(t.child) shows the root:\n\(noPages)")
        let unknown = Cmd.cli(["inspect", t.dir, "-p", "999999"])
        #expect(unknown.status == 1 && unknown.err.contains("no process with pid 999999"), "\(unknown)")
    }

    /// CRI-O and containerd keep the name elsewhere (checkpointctl reads the same places).
    @Test func crioAndContainerdMetadata() throws {
        let t = try DumpedTree.make()
        defer { t.tearDown() }
        let crioSpec: [String: Any] = ["annotations": [
            "io.container.manager": "cri-o", "io.kubernetes.cri-o.Metadata": #"{"name":"counter"}"#,
            "io.kubernetes.cri-o.Created": "2026-11-22T09:00:00Z",
        ]]
        try JSONSerialization.data(withJSONObject: crioSpec).write(to: URL(fileURLWithPath: t.dir + "/spec.dump"))
        let crio = try Inspector(directory: t.dir).inspect(InspectOptions())
        #expect(crio.containerName == "counter" && crio.engine == "CRI-O" && crio.created == "2026-11-22T09:00:00Z")
        #expect(crio.id == DumpedTree.containerID && crio.runtime == "runc")
        let containerdSpec: [String: Any] = ["annotations": ["io.kubernetes.cri.container-name": "web"]]
        try JSONSerialization.data(withJSONObject: containerdSpec).write(to: URL(fileURLWithPath: t.dir + "/spec.dump"))
        let containerd = try Inspector(directory: t.dir).inspect(InspectOptions())
        #expect(containerd.containerName == "web" && containerd.engine == "containerd")
        #expect(containerd.created == "2026-11-22T10:00:00.123456789Z" && containerd.checkpointed == "2026-11-22T10:05:00Z")
    }

    @Test func badCheckpointsAreOneLineErrors() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let empty = scratch.sub("empty")
        try FileManager.default.createDirectory(atPath: empty + "/checkpoint", withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: empty + "/config.dump"))
        let cases: [(dir: String, message: String)] = [
            (empty, "Error: checkpoint \(empty): no checkpoint/inventory.img (not a checkpoint, or an incomplete dump)"),
            (scratch.sub("absent"), "Error: checkpoint \(scratch.sub("absent")): no such directory"),
        ]
        for c in cases {
            let o = Cmd.cli(["inspect", c.dir])
            #expect(o.status == 1 && o.out.isEmpty, "\(o)")
            #expect(o.err.split(separator: "\n") == [Substring(c.message)], "\(o)")
        }
        // A damaged inventory or config.dump names the file.
        let t = try DumpedTree.make()
        defer { t.tearDown() }
        try Data("not json".utf8).write(to: URL(fileURLWithPath: t.dir + "/config.dump"))
        let badConfig = Cmd.cli(["inspect", t.dir])
        #expect(badConfig.status == 1 && badConfig.err == "Error: checkpoint member \(t.dir)/config.dump: not a JSON object\n", "\(badConfig)")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: t.images + "/inventory.img"))
        unlink(t.dir + "/config.dump")
        let badInventory = Cmd.cli(["inspect", t.dir])
        #expect(badInventory.status == 1 && badInventory.err.hasPrefix("Error: image \(t.images)/inventory.img: ")
                && badInventory.err.split(separator: "\n").count == 1, "\(badInventory)")
        let badFormat = Cmd.cli(["inspect", t.dir, "--format", "yaml"])
        #expect(badFormat.status == 1 && badFormat.err == "Error: --format yaml: unknown format (tree or json)\n", "\(badFormat)")
    }
}

/// checkpointctl's size format, computed independently of the code under test.
func humanBytes(_ n: UInt64) -> String {
    if n < 1024 { return "\(n) B" }
    if n < 1024 * 1024 { return String(format: "%.1f KiB", Double(n) / 1024) }
    if n < 1024 * 1024 * 1024 { return String(format: "%.1f MiB", Double(n) / 1048576) }
    return String(format: "%.1f GiB", Double(n) / 1073741824)
}
