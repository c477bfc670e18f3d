import LinuxKernel
import Foundation
import Images

/// The dumped process tree (pstree.img + core-PID.img), each process with its command
/// line and environment read from its dumped memory when asked.
struct ProcessTreeReader {
    let images: ImageDirectory
    let options: InspectOptions

    /// CRIU's task states (TASK_ALIVE 1, TASK_DEAD 2, TASK_STOPPED 3, TASK_ZOMBIE 6).
    static func stateName(_ state: UInt32) -> String {
        switch state {
        case TaskState.alive: return "alive"
        case TaskState.dead: return "zombie"  // how CRIU writes a zombie
        case TaskState.stopped: return "stopped"
        case TaskState.zombie: return "zombie"
        default: return "state \(state)"
        }
    }

    /// The tree's root (or the process `options.pid`) with its descendants.
    func read() throws -> InspectReport.Process {
        let entries = try images.read(.pstree, as: PstreeEntry.self)
        guard !entries.isEmpty else { throw CheckpointError(.image, "image \(images.file(.pstree)): no processes") }
        var nodes: [UInt32: InspectReport.Process] = [:]
        for e in entries { nodes[e.pid] = try process(e) }
        let pids = Set(entries.map(\.pid))
        var children: [UInt32: [UInt32]] = [:]
        for e in entries where pids.contains(e.ppid) && e.ppid != e.pid { children[e.ppid, default: []].append(e.pid) }
        func build(_ pid: UInt32) -> InspectReport.Process {
            var node = nodes[pid]!
            let kids = (children[pid] ?? []).sorted().map(build)
            node.children = kids.isEmpty ? nil : kids
            return node
        }
        if let wanted = options.pid {
            guard pids.contains(wanted) else {
                throw CheckpointError(.notFound, "checkpoint \(images.path): no process with pid \(wanted) (pids: \(entries.map { String($0.pid) }.joined(separator: ", ")))")
            }
            return build(wanted)
        }
        let root = entries.first { !pids.contains($0.ppid) } ?? entries[0]
        return build(root.pid)
    }

    private func process(_ e: PstreeEntry) throws -> InspectReport.Process {
        let core = try images.readOne(.core(e.pid), as: CoreEntry.self)
        let state = core.hasTc ? core.tc.taskState : TaskState.alive
        var p = InspectReport.Process(pid: e.pid, ppid: e.ppid, pgid: e.pgid, sid: e.sid,
                                      command: core.hasTc ? core.tc.comm : "", cmdline: nil, arguments: nil,
                                      taskState: Self.stateName(state), threads: e.threads,
                                      environmentVariables: nil, children: nil)
        // Zombies and dead tasks have no memory images.
        guard options.readsMemory, state == TaskState.alive || state == TaskState.stopped else { return p }
        guard images.exists(.mm(e.pid)), images.exists(.pagemap(e.pid)) else { return p }
        let mm = try images.readOne(.mm(e.pid), as: MmEntry.self)
        let memory = try DumpedMemory(images: images, pid: e.pid)
        if options.commandLines, let argv = try memory.strings(mm.mmArgStart, mm.mmArgEnd), !argv.isEmpty {
            p.arguments = argv
            p.cmdline = argv.joined(separator: " ")
        }
        if options.environment, let env = try memory.strings(mm.mmEnvStart, mm.mmEnvEnd) {
            var vars: [String: String] = [:]
            for item in env where !item.isEmpty {
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                vars[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            p.environmentVariables = vars
        }
        return p
    }
}
