import Foundation

/// The text tree checkpointctl prints for `inspect`, built from an `InspectReport`.
struct TreeView {
    struct Node {
        var text: String
        var children: [Node] = []
        init(_ text: String, _ children: [Node] = []) { self.text = text; self.children = children }
    }

    static func render(_ report: InspectReport) -> String {
        var lines = [report.containerName]
        let children = nodes(report)
        for (i, c) in children.enumerated() { draw(c, prefix: "", last: i == children.count - 1, into: &lines) }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func draw(_ node: Node, prefix: String, last: Bool, into lines: inout [String]) {
        lines.append(prefix + (last ? "└── " : "├── ") + node.text)
        let inner = prefix + (last ? "    " : "│   ")
        for (i, c) in node.children.enumerated() { draw(c, prefix: inner, last: i == node.children.count - 1, into: &lines) }
    }

    private static func nodes(_ r: InspectReport) -> [Node] {
        var out: [Node] = []
        if let v = r.image { out.append(Node("Image: \(v)")) }
        if let v = r.id { out.append(Node("ID: \(v)")) }
        if let v = r.runtime { out.append(Node("Runtime: \(v)")) }
        if let v = r.created { out.append(Node("Created: \(v)")) }
        if let v = r.checkpointed { out.append(Node("Checkpointed: \(v)")) }
        if let v = r.engine { out.append(Node("Engine: \(v)")) }
        if let v = r.signer { out.append(Node("Signer: \(v)")) }
        let size = r.checkpointSize
        out.append(Node("Checkpoint size: \(bytes(size.totalSize))",
                        size.memoryPagesSize > 0 ? [Node("Memory pages size: \(bytes(size.memoryPagesSize))")] : []))
        if let v = size.rootFsDiffSize { out.append(Node("Root FS diff size: \(bytes(v))")) }
        if let s = r.statistics {
            out.append(Node("CRIU dump statistics", [
                Node("Freezing time: \(micros(s.freezingTime))"), Node("Frozen time: \(micros(s.frozenTime))"),
                Node("Memdump time: \(micros(s.memdumpTime))"), Node("Memwrite time: \(micros(s.memwriteTime))"),
                Node("Pages scanned: \(s.pagesScanned)"), Node("Pages written: \(s.pagesWritten)"),
            ]))
        }
        if let tree = r.processTree {
            let files = Dictionary((r.fileDescriptors ?? []).map { ($0.pid, $0.openFiles) }, uniquingKeysWith: { a, _ in a })
            out.append(Node("Process tree", [process(tree, files: files, withFiles: r.fileDescriptors != nil)]))
        }
        if let mounts = r.mounts, mounts.isEmpty {
            out.append(Node("Overview of mounts: none recorded (no mountpoints image, no spec.dump mounts)"))
        } else if let mounts = r.mounts {
            out.append(Node("Overview of mounts", mounts.map {
                Node("Destination: \($0.destination)", [Node("Type: \($0.type)"), Node("Source: \($0.source)")])
            }))
        }
        return out
    }

    private static func process(_ p: InspectReport.Process, files: [UInt32: [InspectReport.OpenFile]], withFiles: Bool) -> Node {
        let tag = p.taskState == "alive" ? "\(p.pid)" : "\(p.pid) (\(p.taskState))"
        var node = Node("[\(tag)]  \(p.cmdline ?? p.command)")
        if let env = p.environmentVariables, !env.isEmpty {
            node.children.append(Node("Environment variables", env.keys.sorted().map { Node("\($0)=\(env[$0]!)") }))
        }
        if withFiles, let open = files[p.pid] {
            node.children.append(Node("Open files", open.map {
                Node($0.type == $0.fd ? "[\($0.fd)]  \($0.path)" : "[\($0.type) \($0.fd)]  \($0.path)")
            }))
        }
        node.children += (p.children ?? []).map { process($0, files: files, withFiles: withFiles) }
        return node
    }

    /// 1024-based, one decimal, as checkpointctl prints sizes ("204 B", "2.8 MiB").
    static func bytes(_ n: UInt64) -> String {
        guard n >= 1024 else { return "\(n) B" }
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(n) / 1024, unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return String(format: "%.1f", value) + " " + units[unit]
    }

    static func micros(_ us: UInt32) -> String {
        if us < 1000 { return "\(us) us" }
        if us < 1_000_000 { return String(format: "%.3f ms", Double(us) / 1000) }
        return String(format: "%.3f s", Double(us) / 1_000_000)
    }
}
