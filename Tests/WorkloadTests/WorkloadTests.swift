// Real checkpoint/restore of the C workloads (one per capability, two modes each),
// crit decoding our images, and failure handling. Everything runs serialized: the
// tests share the machine's pid space and each restores original pids.

import LinuxKernel
import Foundation
import Images
import SystemTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("checkpoint/restore workloads", .serialized)
struct CheckpointRestoreTests {}

// MARK: - One test per capability × mode

extension CheckpointRestoreTests {
    @Suite("capabilities")
    struct Capabilities {
        @Test("8 threads keep counting", arguments: Mode.allCases)
        func threads(_ mode: Mode) async throws { try await checkpointRestore(.threads, mode) }

        @Test("51-process tree keeps pid/ppid/pgid/sid", arguments: Mode.allCases)
        func tree(_ mode: Mode) async throws { try await checkpointRestore(.tree, mode) }

        @Test("512 MiB of random memory and a zero region", arguments: Mode.allCases)
        func memory(_ mode: Mode) async throws { try await checkpointRestore(.memory, mode) }

        @Test("MAP_SHARED anonymous memory stays shared", arguments: Mode.allCases)
        func sharedAnon(_ mode: Mode) async throws { try await checkpointRestore(.sharedAnon, mode) }

        @Test("blocked read() and nanosleep()", arguments: Mode.allCases)
        func blocked(_ mode: Mode) async throws { try await checkpointRestore(.blocked, mode) }

        @Test("signal handlers, masks, altstack, pending signals", arguments: Mode.allCases)
        func signals(_ mode: Mode) async throws { try await checkpointRestore(.signals, mode) }

        @Test("files: offsets, flags, deleted file, devices, shared offsets", arguments: Mode.allCases)
        func files(_ mode: Mode) async throws { try await checkpointRestore(.files, mode) }

        @Test("pipe and FIFO contents", arguments: Mode.allCases)
        func pipes(_ mode: Mode) async throws { try await checkpointRestore(.pipes, mode) }

        @Test("stopped child and unreaped zombie", arguments: Mode.allCases)
        func stoppedZombie(_ mode: Mode) async throws { try await checkpointRestore(.stoppedZombie, mode) }

        @Test("malloc under load, rseq registration, brk", arguments: Mode.allCases)
        func mallocRseq(_ mode: Mode) async throws { try await checkpointRestore(.mallocRseq, mode) }

        @Test("x87/SSE/AVX/AVX-512 register state", arguments: Mode.allCases)
        func fpu(_ mode: Mode) async throws { try await checkpointRestore(.fpu, mode) }

        @Test("seccomp filter and no_new_privs in two threads", arguments: Mode.allCases)
        func seccomp(_ mode: Mode) async throws { try await checkpointRestore(.seccomp, mode) }

        @Test("clocks of a time namespace continue, a day ahead of the host's", arguments: Mode.allCases)
        func timeNamespace(_ mode: Mode) async throws { try await checkpointRestore(.timens, mode) }

        @Test("SysV shared memory stays the same segment in parent and child", arguments: Mode.allCases)
        func sysvShm(_ mode: Mode) async throws { try await checkpointRestore(.sysvShm, mode) }

        @Test("itimer, subreaper, dumpable, personality, umask, rlimit, name, nice, pdeath signal", arguments: Mode.allCases)
        func attributes(_ mode: Mode) async throws { try await checkpointRestore(.attributes, mode) }

        /// A busybox shell loop appending 1, 2, 3, ... to DIR/count every 0.1 s.
        @Test("shell loop continues its count", arguments: Mode.allCases)
        func shellLoop(_ mode: Mode) async throws {
            try #require(FileManager.default.isExecutableFile(atPath: Paths.binary),
                         "no CLI at \(Paths.binary): run `swift build` or set OCICHECKPOINT_BIN")
            let run = try WorkloadRun(Workload(name: "shell-loop"))
            defer { run.cleanup() }
            let count = run.dir + "/count"
            func values() -> [Int] {
                (Proc.read(count) ?? "").split(separator: "\n").compactMap { Int($0) }
            }
            try run.startShell("cd \(run.dir) && i=0; while :; do i=$((i+1)); echo $i >> \(count); sleep 0.1; done")
            let deadline = Date().addingTimeInterval(20)
            while values().count < 5 && Date() < deadline { await sleep(0.05) }
            try #require(values().count >= 5, "shell loop does not count\n\(run.diagnostics())")
            run.recordProcesses()

            let l0 = values().last ?? 0
            let d = await run.dump(leaveRunning: mode == .leaveRunning)
            let l1 = values().last ?? 0
            try #require(d.status == 0, "dump failed\n\(run.diagnostics())")
            let left = mode == .kill ? await run.reapOriginal() : await run.killOriginal()
            try #require(left.isEmpty, "original processes \(left) still exist\n\(run.diagnostics())")
            // the shell's `sleep` child of the dump moment is an orphan zombie until init reaps it
            await sleep(2.5)

            let c0 = values().count
            let r = await run.restore()
            try #require(r.status == 0, "restore failed\n\(run.diagnostics())")
            #expect(run.restoredPid == run.rootPid)
            let until = Date().addingTimeInterval(20)
            while values().count < c0 + 5 && Date() < until { await sleep(0.05) }
            run.killAll()
            let v = values()
            let report = "count file: \(v.suffix(40)) (before dump \(l0), after dump \(l1), lines at restore \(c0))\n\(run.diagnostics())"
            #expect(v.count >= c0 + 5, "restored shell wrote \(v.count - c0) numbers in 20 s\n\(report)")

            // split at the first place the sequence does not go up by one
            let b = v.indices.dropFirst().first { v[$0] != v[$0 - 1] + 1 }
            #expect(v.first == 1, "count does not start at 1\n\(report)")
            switch mode {
            case .kill:
                #expect(b == nil, "gap or repeat at line \(b.map { $0 + 1 } ?? 0)\n\(report)")
            case .leaveRunning:
                // The original kept counting after the dump until we killed it; the restored
                // shell continues from the dumped value N (l0 <= N <= l1): it may repeat
                // what the original wrote after the dump, but must not skip.
                if let b {
                    let s = v[b]
                    #expect(s >= l0 + 1 && s <= l1 + 1 && s <= v[b - 1],
                            "restored run starts at \(s) after \(v[b - 1]); dumped value was in \(l0)...\(l1)\n\(report)")
                    let rest = v[b...]
                    let b2 = rest.indices.dropFirst().first { v[$0] != v[$0 - 1] + 1 }
                    #expect(b2 == nil, "second gap or repeat at line \(b2.map { $0 + 1 } ?? 0)\n\(report)")
                    #expect(rest.count >= 5, "restored shell wrote only \(rest.count) numbers\n\(report)")
                }
            }
        }
    }
}

// MARK: - crit reads our images

extension CheckpointRestoreTests {
    @Suite("crit")
    struct Crit {
        @Test("crit decodes every image", arguments: [Workload.files, .pipes])
        func critDecodesEveryImage(_ w: Workload) async throws {
            try #require(FileManager.default.isExecutableFile(atPath: Paths.binary),
                         "no CLI at \(Paths.binary): run `swift build` or set OCICHECKPOINT_BIN")
            try #require(FileManager.default.fileExists(atPath: Paths.crit), "crit is not installed (Debian package criu)")
            let run = try WorkloadRun(w)
            defer { run.cleanup() }
            try run.start()
            try await run.waitReady()
            let d = await run.dump(leaveRunning: false)
            try #require(d.status == 0, "dump failed\n\(run.diagnostics())")
            _ = await run.reapOriginal()

            let names = try FileManager.default.contentsOfDirectory(atPath: run.images)
                .filter { $0.hasSuffix(".img") && !$0.hasPrefix("pages-") }.sorted()
            #expect(names.contains("inventory.img"), "images: \(names)")
            var failures: [String] = []
            for name in names {
                let out = run.base + "/crit.out", err = run.base + "/crit.err"
                let pid = try Proc.spawn([Paths.python, Paths.crit, "decode", "-i", run.images + "/" + name],
                                         stdout: out, stderr: err, append: false)
                let st = await Proc.wait(pid, timeout: 120)
                if st == nil { Proc.sigkill(pid); _ = Spawn.wait(pid, timeout: 5) }
                if st?.exited != true || st?.code != 0 {
                    failures.append("\(name): \(st.map { $0.description } ?? "timeout"): \((Proc.read(err) ?? "").suffix(1500))")
                }
            }
            #expect(failures.isEmpty,
                    "crit decode failed on \(failures.count) of \(names.count) images:\n\(failures.joined(separator: "\n"))")
        }
    }
}

// MARK: - Failures: clear errors, nothing lost

extension CheckpointRestoreTests {
    @Suite("failures")
    struct Failures {
        func requireBinary() throws {
            try #require(FileManager.default.isExecutableFile(atPath: Paths.binary),
                         "no CLI at \(Paths.binary): run `swift build` or set OCICHECKPOINT_BIN")
        }

        /// Exit 1 and exactly one line on stderr.
        func expectOneLineError(_ r: CLIResult, _ run: WorkloadRun, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(r.status == 1, "want exit 1\n\(run.diagnostics())", sourceLocation: sourceLocation)
            #expect(r.stderrLines.count == 1, "want one line on stderr, got \(r.stderrLines.count):\n\(r.stderr)",
                    sourceLocation: sourceLocation)
        }

        /// Polls a little: the tasks must be running again, not stopped or traced.
        func expectRunningUntraced(_ run: WorkloadRun, sourceLocation: SourceLocation = #_sourceLocation) async {
            var problem = run.runningUntraced()
            let deadline = Date().addingTimeInterval(3)
            while problem != nil && Date() < deadline {
                await sleep(0.05)
                problem = run.runningUntraced()
            }
            #expect(problem == nil, "after the failed dump: \(problem ?? "")\n\(run.diagnostics())",
                    sourceLocation: sourceLocation)
        }

        @Test("dump of a pid that does not exist")
        func dumpMissingPid() async throws {
            try requireBinary()
            let run = try WorkloadRun(Workload(name: "nopid"))
            defer { run.cleanup() }
            let max = Int32(Proc.read("/proc/sys/kernel/pid_max")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 32768
            let pid = try #require(stride(from: max - 1, to: 300, by: -1).first { !Proc.exists($0) })
            let r = await CLI.run(["dump", "-t", "\(pid)", "-D", run.images, "-o", run.dumpLog], outputDir: run.base)
            #expect(r.status == 1, "\(r)")
            #expect(r.stderrLines.count == 1, "\(r)")
            #expect(r.stderr.contains("\(pid)"), "stderr does not name pid \(pid): \(r)")
            #expect(!FileManager.default.fileExists(atPath: run.images + "/inventory.img"))
        }

        @Test("fault during dump: workload keeps running, no complete-looking images",
              arguments: ["dump-after-seize", "dump-after-memory"], [Workload.threads, .memorySmall])
        func dumpFault(_ fault: String, _ w: Workload) async throws {
            try requireBinary()
            let run = try WorkloadRun(w)
            defer { run.cleanup() }
            try run.start()
            try await run.waitReady()
            let d = await run.dump(leaveRunning: false, fault: fault)
            expectOneLineError(d, run)
            await expectRunningUntraced(run)
            #expect(!FileManager.default.fileExists(atPath: run.images + "/inventory.img"),
                    "an incomplete dump left inventory.img")
            await run.expectPass("workload after the \(fault) fault")
        }

        @Test("image dir full or read-only: dump fails, workload keeps running",
              arguments: ["size=1m", "ro"])
        func dumpIntoSmallDir(_ option: String) async throws {
            try requireBinary()
            let run = try WorkloadRun(.memorySmall)
            defer { run.cleanup() }
            let mnt = run.base + "/small"
            try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
            let flags: UInt = option == "ro" ? UInt(MS_RDONLY) : 0
            let rc = Glibc.mount("tmpfs", mnt, "tmpfs", flags, "size=1m")
            try #require(rc == 0, "mount tmpfs on \(mnt): \(String(cString: strerror(errno)))")
            defer { umount2(mnt, Int32(MNT_DETACH)) }
            try run.start()
            try await run.waitReady()
            let d = await run.dump(leaveRunning: false, into: mnt)
            expectOneLineError(d, run)
            await expectRunningUntraced(run)
            #expect(!FileManager.default.fileExists(atPath: mnt + "/inventory.img"))
            await run.expectPass("memory workload after dumping into a \(option) tmpfs")
        }

        @Test("restore while the original still runs: pid in use")
        func busyPid() async throws {
            try requireBinary()
            let run = try WorkloadRun(.threads)
            defer { run.cleanup() }
            try run.start()
            try await run.waitReady()
            let d = await run.dump(leaveRunning: true)
            try #require(d.status == 0, "dump failed\n\(run.diagnostics())")
            let r = await run.restore(timeout: 300)
            expectOneLineError(r, run)
            #expect(r.stderr.contains("\(run.rootPid)"), "stderr does not name pid \(run.rootPid): \(r.stderr)")
            #expect(r.stderr.lowercased().contains("in use"), "stderr does not say the pid is in use: \(r.stderr)")
            await expectRunningUntraced(run)
            await run.expectPass("original after the refused restore")
        }

        @Test("truncated image: restore names it, images untouched, nothing left running",
              arguments: ["core", "pagemap", "pages"])
        func truncatedImage(_ kind: String) async throws {
            try requireBinary()
            let run = try WorkloadRun(.threads)
            defer { run.cleanup() }
            try await run.dumpKilled()

            let all = try FileManager.default.contentsOfDirectory(atPath: run.images).sorted()
            let name = kind == "pages" ? all.first { $0.hasPrefix("pages-") && $0.hasSuffix(".img") }
                                       : "\(kind)-\(run.rootPid).img"
            let file = try #require(name.flatMap { all.contains($0) ? $0 : nil }, "no \(kind) image among \(all)")
            let path = run.images + "/" + file
            let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber).int64Value
            try #require(truncate(path, off_t(size / 2)) == 0)
            let before = run.imageSnapshot()

            let r = await run.restore()
            expectOneLineError(r, run)
            #expect(r.stderr.contains(file), "stderr does not name \(file): \(r.stderr)")
            #expect(run.imageSnapshot() == before, "restore changed the image dir")
            let survivors = await Proc.waitVanished(run.pids, timeout: 20)
            #expect(survivors.isEmpty, "processes \(survivors) exist after the failed restore")
        }

        @Test("fault during restore: created tasks die, images untouched, a second restore works",
              arguments: ["restore-after-fork", "restore-before-resume"], [Workload.threads, .tree])
        func restoreFault(_ fault: String, _ w: Workload) async throws {
            try requireBinary()
            let run = try WorkloadRun(w)
            defer { run.cleanup() }
            try await run.dumpKilled()
            let before = run.imageSnapshot()

            let r = await run.restore(fault: fault, timeout: 120)
            expectOneLineError(r, run)
            let survivors = await Proc.waitVanished(run.pids, timeout: 20)
            #expect(survivors.isEmpty, "processes \(survivors) survive the failed restore")
            #expect(run.imageSnapshot() == before, "the failed restore changed the image dir")
            try #require(survivors.isEmpty)

            let r2 = await run.restore()
            try #require(r2.status == 0, "second restore failed\n\(run.diagnostics())")
            #expect(run.restoredPid == run.rootPid)
            await run.expectPass("\(w.testDescription) restored after a \(fault) fault")
        }
    }
}
