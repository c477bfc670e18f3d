// runc with our binary as its checkpoint engine (`runc --criu ocicheckpoint ...`, served as
// CRIU's RPC `swrk`) on real busybox containers: checkpoint and restore under the same and a
// new id, --leave-running, a richer container (hostname, tmpfs, memory limit, several
// processes, SysV shm) and a dump that fails half-way and must leave the container as it was.

import Foundation
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized, .enabled(if: Env.usable, "needs root and /usr/sbin/runc"))
struct ContainerTests {
    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Env.binary),
                     "no engine binary at \(Env.binary): swift build first, or set OCICHECKPOINT_BIN")
    }

    private func checkpointReport(_ o: Output, work: String) -> String {
        "\(o)\n--- \(work)/dump.log (tail)\n\(tail(work + "/dump.log"))"
    }

    private func restoreReport(_ o: Output, work: String) -> String {
        "\(o)\n--- \(work)/restore.log (tail)\n\(tail(work + "/restore.log"))"
    }

    // MARK: 1. checkpoint (the container stops), restore under the same id, then under a new id

    @Test func checkpointThenRestoreUnderTheSameAndANewID() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = scratch.newID()
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: countingScript())
        try bundle.run(id: id)
        let c = Runc(id: id)
        try #require(waitFor(10) { bundle.count.count >= 5 }, "the container does not count: \(tail(bundle.path + "/run.err"))")

        let images = scratch.sub("images"), work = scratch.sub("work")
        let dump = c.checkpoint(images: images, work: work)
        try #require(dump.ok, "checkpoint: \(checkpointReport(dump, work: work))")
        #expect(c.status != "running", "the container still runs after a checkpoint without --leave-running")
        let last = bundle.lastCount
        #expect(consecutive(bundle.count, from: 1), "count before restore: \(bundle.count)")
        usleep(600_000)
        #expect(bundle.lastCount == last, "the container kept counting after its checkpoint")
        // For the restore under a new id: the bundle as the checkpoint left it.
        let second = try bundle.copy(to: scratch.sub("bundle2"))

        let work1 = scratch.sub("work-restore")
        let restore = c.restore(bundle: bundle.path, images: images, work: work1)
        try #require(restore.ok, "restore: \(restoreReport(restore, work: work1))")
        #expect(c.status == "running")
        #expect(waitFor(10) { bundle.lastCount >= last + 4 }, "no counting after restore: last \(last), now \(bundle.count.suffix(5))")
        // Continues from the checkpointed value: last, last+1, ... without gap or repeat.
        #expect(consecutive(bundle.count, from: 1), "count around \(last): \(bundle.count.suffix(12))")
        let exec = c.exec(["sh", "-c", "echo ok"])
        #expect(exec.ok && exec.out == "ok\n", "runc exec: \(exec)")
        let (kill, delete, stopped) = c.killAndDelete()
        #expect(kill.ok, "runc kill: \(kill)")
        #expect(stopped, "not stopped after runc kill KILL: \(c.status ?? "-")")
        #expect(delete.ok, "runc delete: \(delete)")
        #expect(c.status == nil, "runc still knows \(id) after delete")

        // The same images under a new id, in a copy of the bundle.
        let id2 = scratch.newID()
        let c2 = Runc(id: id2)
        #expect(second.lastCount == last)
        let work2 = scratch.sub("work-restore2")
        let restore2 = c2.restore(bundle: second.path, images: images, work: work2)
        try #require(restore2.ok, "restore as \(id2): \(restoreReport(restore2, work: work2))")
        #expect(c2.status == "running")
        #expect(waitFor(10) { second.lastCount >= last + 4 }, "no counting after restore as \(id2): \(second.count.suffix(5))")
        #expect(consecutive(second.count, from: 1), "count around \(last) as \(id2): \(second.count.suffix(12))")
        let exec2 = c2.exec(["sh", "-c", "echo ok"])
        #expect(exec2.ok && exec2.out == "ok\n", "runc exec \(id2): \(exec2)")
        let (kill2, delete2, stopped2) = c2.killAndDelete()
        #expect(kill2.ok && stopped2 && delete2.ok, "teardown of \(id2): \(kill2)\n\(delete2)")
    }

    // MARK: 2. --leave-running

    @Test func leaveRunningThenRestore() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = scratch.newID()
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: countingScript())
        try bundle.run(id: id)
        let c = Runc(id: id)
        try #require(waitFor(10) { bundle.count.count >= 5 }, "the container does not count: \(tail(bundle.path + "/run.err"))")

        let images = scratch.sub("images"), work = scratch.sub("work")
        let before = bundle.lastCount
        let dump = c.checkpoint(images: images, work: work, extra: ["--leave-running"])
        try #require(dump.ok, "checkpoint --leave-running: \(checkpointReport(dump, work: work))")
        // The tree was frozen while dumped: the image holds a value in before...after.
        let after = bundle.lastCount
        #expect(c.status == "running", "after checkpoint --leave-running: \(c.status ?? "unknown to runc")")
        usleep(1_000_000)
        #expect(bundle.lastCount > after, "the original stopped counting: \(after) → \(bundle.lastCount)")
        #expect(consecutive(bundle.count, from: 1), "the original's count: \(bundle.count.suffix(12))")

        let (kill, delete, stopped) = c.killAndDelete()
        #expect(kill.ok && stopped && delete.ok, "teardown of the original: \(kill)\n\(delete)")
        try #require(c.status == nil, "runc still knows \(id)")
        let written = bundle.count.count

        let work1 = scratch.sub("work-restore")
        let restore = c.restore(bundle: bundle.path, images: images, work: work1)
        try #require(restore.ok, "restore: \(restoreReport(restore, work: work1))")
        #expect(c.status == "running")
        #expect(waitFor(10) { bundle.count.count >= written + 4 }, "no counting after restore: \(bundle.count.suffix(5))")
        let resumed = bundle.count.dropFirst(written)
        let first = resumed.first ?? -1
        #expect((before + 1)...(after + 1) ~= first,
                "restored count starts at \(first), checkpoint was between \(before) and \(after)")
        #expect(consecutive(resumed, from: first), "restored count: \(Array(resumed))")
        let exec = c.exec(["sh", "-c", "echo ok"])
        #expect(exec.ok && exec.out == "ok\n", "runc exec: \(exec)")
        let (kill2, delete2, stopped2) = c.killAndDelete()
        #expect(kill2.ok && stopped2 && delete2.ok, "teardown of the restored: \(kill2)\n\(delete2)")
    }

    // MARK: 2b. a paused container (docker and containerd pause before they checkpoint)

    @Test func pausedContainerStaysPausedThroughCheckpointLeaveRunning() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = scratch.newID()
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: countingScript())
        try bundle.run(id: id)
        let c = Runc(id: id)
        try #require(waitFor(10) { bundle.count.count >= 5 }, "the container does not count: \(tail(bundle.path + "/run.err"))")
        let pause = Cmd.run([Env.runc, "pause", id])
        try #require(pause.ok && c.status == "paused", "runc pause: \(pause)")
        let paused = bundle.lastCount

        let images = scratch.sub("images"), work = scratch.sub("work")
        let dump = c.checkpoint(images: images, work: work, extra: ["--leave-running"])
        try #require(dump.ok, "checkpoint --leave-running of a paused container: \(checkpointReport(dump, work: work))")
        #expect(c.status == "paused", "a paused container is \(c.status ?? "unknown to runc") after checkpoint --leave-running")
        usleep(600_000)
        #expect(bundle.lastCount == paused, "the paused container counted on: \(paused) → \(bundle.lastCount)")
        let resume = Cmd.run([Env.runc, "resume", id])
        #expect(resume.ok, "runc resume: \(resume)")
        #expect(waitFor(10) { bundle.lastCount >= paused + 3 }, "no counting after resume: \(bundle.count.suffix(5))")
        #expect(consecutive(bundle.count, from: 1), "count across pause, checkpoint and resume: \(bundle.count.suffix(12))")
    }

    // MARK: 3. hostname, tmpfs, memory limit, several processes, SysV shm

    static let shmKey = "0x6f6374"
    static let shmSize = "8192"
    static let memoryLimit = 64 << 20

    /// What the tests compare before the checkpoint and after the restore, seen through `runc exec`.
    struct RichView: Equatable, CustomStringConvertible {
        var hostname = ""
        var data = ""
        var processes: Set<String> = []
        var description: String {
            "hostname: \(hostname)\n/data:\n\(data)processes:\n  \(processes.sorted().joined(separator: "\n  "))"
        }
    }

    private func richView(_ c: Runc) -> (RichView, [Output]) {
        var v = RichView()
        let host = c.exec(["hostname"])
        v.hostname = host.out.trimmingCharacters(in: .whitespacesAndNewlines)
        // Names, modes, types, sizes, owners; contents; the link; the mount and its options.
        let data = c.exec(["sh", "-c", """
            cd /data && find . | sort | while read f; do stat -c '%n %a %F %s %u:%g' "$f"; done && \
            find . -type f | sort | xargs md5sum && echo "link -> $(readlink link)" && grep ' /data ' /proc/mounts
            """])
        v.data = data.out
        // pid and command line of each process, but the ps itself and the counter's short sleeps
        // (also caught between fork and exec, still showing the shell's command line).
        let ps = c.exec(["ps", "-o", "pid,args"])
        for line in ps.out.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", maxSplits: 1)
            guard fields.count == 2 else { continue }
            let args = fields[1].trimmingCharacters(in: .whitespaces)
            if args.hasPrefix("ps ") || args == "sleep 0.2" || (fields[0] != "1" && args.hasPrefix("sh -c ")) { continue }
            v.processes.insert("\(fields[0]) \(args)")
        }
        return (v, [host, data, ps])
    }

    private func memoryLimit(_ c: Runc) -> (Int?, String) {
        guard let pid = c.pid, let path = cgroupPath(pid: pid, controller: "memory") else { return (nil, "no memory cgroup") }
        let file = "/sys/fs/cgroup/memory" + path + "/memory.limit_in_bytes"
        return (readFile(file).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }, file)
    }

    @Test func richContainerSurvivesCheckpointAndRestore() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = scratch.newID()
        let setup = """
            shmtool create \(Self.shmKey) \(Self.shmSize) >/tmp/shm.out 2>&1 || exit 1; \
            echo hello-data > /data/a.txt && chmod 640 /data/a.txt && mkdir /data/sub && chmod 710 /data/sub && \
            dd if=/dev/urandom of=/data/sub/blob bs=1024 count=64 2>/dev/null && chmod 600 /data/sub/blob && \
            ln -s a.txt /data/link || exit 1; \
            for k in 1 2 3; do sleep 1000 & done; echo ready > /tmp/ready; 
            """
        let bundle = try Bundle.make(at: scratch.sub("bundle"), args: countingScript(setup: setup)) { config in
            config["hostname"] = "oct-host"
            var mounts = config["mounts"] as? [[String: Any]] ?? []
            mounts.append(["destination": "/data", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "mode=755"]])
            config["mounts"] = mounts
            var linux = config["linux"] as? [String: Any] ?? [:]
            var resources = linux["resources"] as? [String: Any] ?? [:]
            resources["memory"] = ["limit": Self.memoryLimit]
            linux["resources"] = resources
            config["linux"] = linux
        }
        let cc = Cmd.run([Env.cc, "-static", "-O2", "-o", bundle.rootfs + "/bin/shmtool", Env.helpers + "/shmtool.c"])
        try #require(cc.ok, "compiling shmtool: \(cc)")
        try bundle.run(id: id)
        let c = Runc(id: id)
        try #require(waitFor(10) { FileManager.default.fileExists(atPath: bundle.rootfs + "/tmp/ready") && bundle.count.count >= 3 },
                     "the container did not set up: \(readFile(bundle.rootfs + "/tmp/shm.out") ?? "")\(tail(bundle.path + "/run.err"))")
        // One more file written from outside, through runc exec.
        let late = c.exec(["sh", "-c", "echo late > /data/late.txt && chmod 604 /data/late.txt"])
        try #require(late.ok, "writing /data/late.txt: \(late)")
        let verifyBefore = c.exec(["shmtool", "verify", Self.shmKey, Self.shmSize])
        try #require(verifyBefore.ok, "shmtool verify before the checkpoint: \(verifyBefore)")
        let (view, outputs) = richView(c)
        try #require(outputs.allSatisfy { $0.ok }, "runc exec before the checkpoint: \(outputs)")
        try #require(view.hostname == "oct-host" && view.processes.count == 4 && view.data.contains("late.txt 604"),
                     "before the checkpoint:\n\(view)")
        let (limitBefore, limitFile) = memoryLimit(c)
        try #require(limitBefore == Self.memoryLimit, "memory limit before the checkpoint: \(limitBefore.map(String.init) ?? "-") in \(limitFile)")

        let images = scratch.sub("images"), work = scratch.sub("work")
        let dump = c.checkpoint(images: images, work: work)
        try #require(dump.ok, "checkpoint: \(checkpointReport(dump, work: work))")
        #expect(c.status != "running")
        let last = bundle.lastCount

        let work1 = scratch.sub("work-restore")
        let restore = c.restore(bundle: bundle.path, images: images, work: work1)
        try #require(restore.ok, "restore: \(restoreReport(restore, work: work1))")
        #expect(c.status == "running")
        let (restored, outputs2) = richView(c)
        #expect(outputs2.allSatisfy { $0.ok }, "runc exec after the restore: \(outputs2)")
        #expect(restored.hostname == "oct-host", "hostname after restore: \(restored.hostname)")
        #expect(restored.data == view.data, "/data before:\n\(view.data)after:\n\(restored.data)")
        #expect(restored.processes == view.processes,
                "processes before:\n\(view.processes.sorted())\nafter:\n\(restored.processes.sorted())")
        let verify = c.exec(["shmtool", "verify", Self.shmKey, Self.shmSize])
        #expect(verify.ok, "shmtool verify after the restore: \(verify)")
        let (limit, file) = memoryLimit(c)
        #expect(limit == Self.memoryLimit, "memory limit after the restore: \(limit.map(String.init) ?? "-") in \(file)")
        #expect(waitFor(10) { bundle.lastCount >= last + 3 }, "no counting after restore: \(bundle.count.suffix(5))")
        #expect(consecutive(bundle.count, from: 1), "count around \(last): \(bundle.count.suffix(12))")
        let (kill, delete, stopped) = c.killAndDelete()
        #expect(kill.ok && stopped && delete.ok, "teardown: \(kill)\n\(delete)")
    }

    // MARK: 5. a dump that fails half-way leaves the container running, thawed, untraced

    @Test func failedDumpLeavesTheContainerRunning() throws {
        let scratch = try Scratch()
        defer { scratch.tearDown() }
        let id = scratch.newID()
        let bundle = try Bundle.make(at: scratch.sub("bundle"),
                                     args: countingScript(setup: "sleep 1000 | nc -l -p 12345 >/dev/null 2>&1 & sleep 0.3; sleep 1000 | nc 127.0.0.1 12345 >/dev/null 2>&1 & "))
        try bundle.run(id: id)
        let c = Runc(id: id)
        try #require(waitFor(10) { bundle.count.count >= 3 }, "the container does not count: \(tail(bundle.path + "/run.err"))")
        let pid = try #require(c.pid)
        // 12345 = 0x3039, connected (state 01) inside the container's net namespace: an
        // established connection refuses a dump without --tcp-established.
        let tcp = { (readFile("/proc/\(pid)/net/tcp") ?? "") + (readFile("/proc/\(pid)/net/tcp6") ?? "") }
        try #require(waitFor(10) {
            tcp().split(separator: "\n").contains { $0.contains(":3039 ") && $0.contains(" 01 ") }
        }, "nc is not connected: \(tcp())")

        let images = scratch.sub("images"), work = scratch.sub("work")
        let dump = c.checkpoint(images: images, work: work)
        #expect(!dump.ok, "checkpoint of a container with an established connection succeeded: \(dump)")
        // Our reason, from runc's output or the engine's log.
        let log = readFile(work + "/dump.log") ?? ""
        let reason = (dump.out + dump.err + log).split(separator: "\n").first {
            $0.contains("TCP connection") && $0.contains("is established; dump with --tcp-established")
        }
        #expect(reason != nil, "no line naming the established connection: \(checkpointReport(dump, work: work))")

        #expect(c.status == "running", "after the failed checkpoint: \(c.status ?? "unknown to runc")")
        #expect(c.pid == pid)
        let counted = bundle.lastCount
        #expect(waitFor(3) { bundle.lastCount >= counted + 3 }, "the container stopped counting: \(bundle.count.suffix(5))")
        #expect(consecutive(bundle.count, from: 1), "count: \(bundle.count.suffix(12))")
        let freezerPath = try #require(cgroupPath(pid: pid, controller: "freezer"))
        let freezer = "/sys/fs/cgroup/freezer" + freezerPath
        let freezerState = readFile(freezer + "/freezer.state")?.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(freezerState == "THAWED", "\(freezer)/freezer.state: \(freezerState ?? "unreadable")")
        let tasks = (readFile(freezer + "/tasks") ?? "").split(separator: "\n").compactMap { Int32($0) }
        #expect(tasks.contains(pid))
        for task in tasks {
            let status = procStatus(task)
            guard !status.isEmpty else { continue }  // the counter's short sleep may have exited
            #expect(status["TracerPid"] == "0", "task \(task) (\(status["Name"] ?? "")) traced by \(status["TracerPid"] ?? "?")")
            #expect(!(status["State"] ?? "").hasPrefix("t"), "task \(task) (\(status["Name"] ?? "")) is \(status["State"] ?? "?")")
        }
        let exec = c.exec(["sh", "-c", "echo ok"])
        #expect(exec.ok && exec.out == "ok\n", "runc exec after the failed checkpoint: \(exec)")
        let (kill, delete, stopped) = c.killAndDelete()
        #expect(kill.ok && stopped && delete.ok, "teardown: \(kill)\n\(delete)")
    }
}
