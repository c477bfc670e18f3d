import Foundation
import LinuxKernel
import CShim
import Images
import ProcFS

/// One process being rebuilt. It starts as a stopped stub: a page of code (`syscall; int3`)
/// at `stub`, in a hole of the dumped layout, through which every syscall is injected.
final class RestoredProcess: TaskControl {
    let image: CheckpointImages.Process
    /// The pid in the tree's own namespace (what the images and injected syscalls use).
    var pid: Int32 { image.pid }
    /// The pid as the restorer sees it (what ptrace and /proc use).
    let hostPid: Int32
    let stub: UInt64
    static let stubSize: UInt64 = 65536
    /// Scratch data inside the stub for syscall arguments.
    var data: UInt64 { stub + 256 }
    private(set) var memory: RemoteMemory
    /// Threads created so far: (tid in the tree's namespace, tid as the restorer sees it).
    private(set) var threads: [(virtual: Int32, host: Int32)]
    /// The fd table this process shares with its parent or children (CLONE_FILES), and
    /// whether it shares its parent's fs (CLONE_FS): see RestoredProcess+Sharing.
    var filesShare: SharedFdTable?
    var sharesParentFs = false
    /// The tree's own user namespace, and the socket that replaces the restorer's pidfd
    /// there (UserNamespace+Restore); the children get the root's.
    var userNamespace: UserNamespace?
    var restorerSocket: RestorerSocket?

    init(image: CheckpointImages.Process, hostPid: Int32, stub: UInt64) throws {
        self.image = image
        self.hostPid = hostPid
        self.stub = stub
        memory = try RemoteMemory(pid: hostPid)
        threads = [(image.pid, hostPid)]
    }

    /// One syscall: through the batch loop (one stop) while batches may run, else stepped
    /// to its entry and exit (two). exit_group never returns to the loop.
    func callRaw(on tid: Int32?, _ nr: Int, _ args: [UInt64]) throws -> Int64 {
        if nr == SyscallNumber.rtSigqueueinfo || nr == SyscallNumber.rtTgsigqueueinfo { signalsQueued = true }
        guard batchable, nr != SyscallNumber.exitGroup else {
            return try SyscallInjector(tid: tid ?? hostPid, codeAddress: stub).callRaw(nr, args)
        }
        return try runTable(on: tid ?? hostPid, [(nr, args)])[0]!
    }

    private var batchTable: UInt64 { stub + Self.batchArea.offset }

    /// Writes `entries` (and `data`, which their arguments point into, after them) as the
    /// batch table and runs it in thread `tid` (SyscallBatch.run).
    private func runTable(on tid: Int32, _ entries: [(nr: Int, args: [UInt64])], data: [UInt8] = [],
                          newTask: (Int32) throws -> Void = { _ in }) throws -> [Int64?] {
        try memory.write(batchTable, SyscallBatch.table(entries) + data)
        return try SyscallBatch.run(tid: tid, memory: memory, codeBase: stub, table: batchTable, count: entries.count, newTask: newTask)
    }

    func write(_ address: UInt64, _ bytes: [UInt8]) throws { try memory.write(address, bytes) }

    /// The stub's code: the injector's `syscall` at its start, the batch loop beside it.
    static let stubCode = SyscallInjector.code + [UInt8](repeating: 0xcc, count: Int(SyscallBatch.codeOffset) - SyscallInjector.code.count) + SyscallBatch.code
    /// Where batches and their data go in the stub, past what `put` uses.
    static let batchArea: (offset: UInt64, size: Int) = (40960, 24576)

    /// `calls` in as few resumes as the batch area allows (SyscallBatch), stopping at the
    /// first failure.
    func callAll(on tid: Int32?, _ calls: [InjectedCall]) throws {
        let results = try runBatches(on: tid, calls, pastFailures: false)
        for (c, r) in zip(calls, results) where r < 0 && r > -4096 {
            throw CheckpointError.errno("\(c.what) in pid \(pid)\(tid.map { " (tid \($0))" } ?? "")", Int32(-r))
        }
        if results.count < calls.count { throw CheckpointError(.invalidState, "pid \(pid): \(calls[results.count].what) was not run") }
    }

    func ask(on tid: Int32?, _ calls: [(nr: Int, args: [UInt64])]) throws -> [Int64] {
        try runBatches(on: tid, calls.map { InjectedCall(what: "syscall \($0.nr)", nr: $0.nr, args: $0.args) }, pastFailures: true)
    }

    /// Whether a pending signal was queued: from then on no batch runs, since the SIGSTOP
    /// that ends one would drop a queued SIGCONT.
    private(set) var signalsQueued = false
    /// (A seccomp filter does not stop batches: it is installed with seccomp suspended for
    /// the thread, SeccompRestore, so the loop's gettid and tkill still pass.)
    private var batchable: Bool { !signalsQueued }

    /// The raw results of `calls` run in thread `tid`, as far as they ran: past a failure
    /// only with `pastFailures`. Each batch leaves the thread in the signal-delivery stop
    /// of its SIGSTOP: every later step starts from there as from any other stop (new
    /// registers with orig_rax -1, so no syscall restart), and a detach from it with
    /// signal 0 discards the SIGSTOP.
    private func runBatches(on tid: Int32?, _ calls: [InjectedCall], pastFailures: Bool) throws -> [Int64] {
        let thread = tid ?? hostPid
        guard batchable, calls.count > 1 else {
            var results: [Int64] = []
            for c in calls {
                var args = c.args
                if !c.data.isEmpty { args[c.dataArgument] = try put(c.data, at: 0) }
                let r = try callRaw(on: tid, c.nr, args)
                results.append(r)
                if r < 0 && r > -4096 && !pastFailures { break }
            }
            return results
        }
        var results: [Int64] = []
        while results.count < calls.count {
            let start = results.count
            var size = SyscallBatch.entrySize, count = 0
            while start + count < calls.count {
                let need = SyscallBatch.entrySize + (calls[start + count].data.count + 7) & ~7
                if size + need > Self.batchArea.size { break }
                size += need; count += 1
            }
            // A lone call (or one whose data fills the area) goes the usual way.
            guard count > 1 else {
                results += try runBatches(on: tid, [calls[start]], pastFailures: pastFailures)
                if results.last.map({ $0 < 0 && $0 > -4096 }) == true && !pastFailures { break }
                continue
            }
            let chunk = calls[start..<(start + count)]
            var data: [UInt8] = []
            var entries: [(nr: Int, args: [UInt64])] = []
            let dataStart = batchTable + UInt64((count + 1) * SyscallBatch.entrySize)
            for c in chunk {
                var args = c.args
                if !c.data.isEmpty {
                    args[c.dataArgument] = dataStart + UInt64(data.count)
                    data += c.data + [UInt8](repeating: 0, count: (8 - c.data.count % 8) % 8)
                }
                entries.append((c.nr, args))
            }
            let got = try runTable(on: thread, entries, data: data)
            let ran = got.prefix { $0 != nil }.map { $0! }
            if ran.isEmpty { throw CheckpointError(.invalidState, "pid \(pid): \(chunk.first!.what) was not run") }
            results += ran
            if ran.count < count && !pastFailures { break }
        }
        return results
    }

    func read(_ address: UInt64, count: Int) throws -> [UInt8] { try memory.read(address, count: count) }

    // MARK: - The stub's inheritance from the restorer

    /// Drops what the stub inherited from the restorer: its rseq registration, fds (but
    /// the restorer's pidfd, which every task of the tree inherits from here) and every
    /// mapping but the stub and the vdso/vvar areas (which are moved, not made).
    func cleanInheritance(keeping pidfd: Int32) throws {
        if let conf = try? Ptrace(hostPid).rseqConfiguration(), conf.rseq_abi_pointer != 0 {
            try call("rseq unregister", SyscallNumber.rseq, conf.rseq_abi_pointer, UInt64(conf.rseq_abi_size), 1, UInt64(conf.signature))
        }
        let keep = try ProcMaps.parse(maps: readProcFile("/proc/\(hostPid)/maps"))
            .filter { $0.start < Self.taskSize && ($0.isSpecial || ($0.start >= stub && $0.end <= stub + Self.stubSize)) }
            .map { ($0.start, $0.end) }
        try dropInheritance(keepingFd: pidfd, keepingAreas: keep)
    }

    static let taskSize: UInt64 = 0x7fff_ffff_f000

    // MARK: - Tree

    /// clone3 with set_tid inside this process: the child starts as a copy of this stub.
    /// Returns the child's pid as the restorer sees it.
    @discardableResult
    func createChild(pid child: Int32, thread: Bool = false, sharing: UInt64 = 0) throws -> Int32 {
        let flags: UInt64 = (thread ? CloneFlags.newThread.rawValue : 0) | sharing
        let tidArray = try put(value: child, at: 512)
        var args = oc_clone_args()
        args.flags = flags
        args.exit_signal = thread ? 0 : UInt64(SIGCHLD)
        args.set_tid = tidArray
        args.set_tid_size = 1
        let argsAddr = try put(value: args, at: 0)
        let injector = try SyscallInjector(tid: hostPid, codeAddress: stub)
        var got: UInt64 = 0
        for attempt in 0... {
            do {
                got = try injector.call("clone3 set_tid=\(child) in pid \(pid)", SyscallNumber.clone3, argsAddr, UInt64(MemoryLayout<oc_clone_args>.size))
                break
            } catch let e as CheckpointError where e.errno == .EEXIST {
                // The killed original may still be on its way out (a SCHED_IDLE thread
                // on a busy machine waits for CPU time to exit): give it 3 s.
                guard attempt < 150, Self.isDying(child) else {
                    throw CheckpointError(.busy, "pid \(child) is in use: cannot restore a task with that pid")
                }
                usleep(20_000)
            }
        }
        guard Int32(truncatingIfNeeded: got) == child, let host = injector.newTasks.first else {
            throw CheckpointError(.invalidState, "clone3 in pid \(pid) made task \(got), wanted \(child)")
        }
        while true {
            guard let ev = try TaskEvent.wait(host) else { continue }
            if case .stopped = ev { break }
            throw CheckpointError(.invalidState, "new task \(child) did not stop after clone3 (\(ev))")
        }
        if thread { threads.append((child, host)) }
        return host
    }

    /// The children `wanted` (pid, sharing flags), made by one batch of clone3 while batches
    /// may run: each new task stops before its first instruction (it is traced from birth),
    /// so none runs the loop its parent is in. `made` gets each one's host pid as soon as
    /// it exists. A clone3 that fails (a pid still in use) is retried the single way.
    func createChildren(_ wanted: [(pid: Int32, sharing: UInt64)], made: (Int32) -> Void) throws -> [Int32] {
        var hosts: [Int32] = []
        var rest = wanted[...]
        while !rest.isEmpty {
            let chunk = Array(rest.prefix(Self.cloneBatchSize))
            let got = batchable && chunk.count > 1 ? try cloneBatch(chunk, made: made) : []
            hosts += got
            rest = rest.dropFirst(got.count)
            if got.count < chunk.count, let next = rest.first {
                let host = try createChild(pid: next.pid, sharing: next.sharing)
                made(host)
                hosts.append(host)
                rest = rest.dropFirst()
            }
        }
        return hosts
    }

    /// clone_args and set_tid of a batch fill the scratch data below the batch area.
    static let cloneBatchSize = 256

    private func cloneBatch(_ chunk: [(pid: Int32, sharing: UInt64)], made: (Int32) -> Void) throws -> [Int32] {
        let argsSize = MemoryLayout<oc_clone_args>.size
        // set_tid arrays of one pid_t each, then the clone_args naming them.
        let tids = data, argsBase = data + UInt64((chunk.count * 4 + 7) & ~7)
        var scratch = chunk.flatMap { bytes($0.pid) }
        scratch += [UInt8](repeating: 0, count: Int(argsBase - tids) - scratch.count)
        for (i, child) in chunk.enumerated() {
            var args = oc_clone_args()
            args.flags = child.sharing
            args.exit_signal = UInt64(SIGCHLD)
            args.set_tid = tids + UInt64(i * 4)
            args.set_tid_size = 1
            scratch += bytes(args)
        }
        try write(data, scratch)
        var hosts: [Int32] = []
        let clones = chunk.indices.map { i in (SyscallNumber.clone3, [argsBase + UInt64(i * argsSize), UInt64(argsSize)]) }
        let results = try runTable(on: hostPid, clones) { host in
            made(host)
            hosts.append(host)
        }
        for (i, r) in results.enumerated() {
            guard let r, r >= 0 else { break }
            guard Int32(truncatingIfNeeded: r) == chunk[i].pid, i < hosts.count else {
                throw CheckpointError(.invalidState, "clone3 in pid \(pid) made task \(r), wanted \(chunk[i].pid)")
            }
        }
        for host in hosts {
            while true {
                guard let ev = try TaskEvent.wait(host) else { continue }
                if case .stopped = ev { break }
                throw CheckpointError(.invalidState, "new task \(host) did not stop after clone3 (\(ev))")
            }
        }
        return hosts
    }

    /// A task with SIGKILL pending, or already dead: its pid is about to be free.
    static func isDying(_ tid: Int32) -> Bool {
        guard let status = try? TaskStatus.read(pid: tid, tid: nil) else { return true }
        return (status.sigPnd | status.shdPnd) & (1 << UInt64(SIGKILL - 1)) != 0 || status.state == "Z" || status.state == "X"
    }

    // MARK: - Files

    /// Our fd `ours` as a new fd in this process (lowest free number); the caller closes it.
    func takeFd(_ ours: Int32, pidfd: Int32) throws -> Int32 {
        if let socket = restorerSocket { return try receiveFd(ours, through: socket, channel: pidfd) }
        return Int32(truncatingIfNeeded: try call("pidfd_getfd \(ours)", SyscallNumber.pidfdGetfd, UInt64(pidfd), UInt64(ours), 0))
    }

    /// The restorer's pidfd (inherited at `inherited`), moved above every fd the image
    /// uses. It works from inside a new pid namespace, where the restorer has no pid.
    func placeRestorerPidfd(inherited: Int32) throws -> Int32 {
        let high = (image.fds.map { Int32($0.fd) }.max() ?? 2) + 1
        let r = try askAll({ ["fcntl F_DUPFD_CLOEXEC", "close"][$0] }, [
            (SyscallNumber.fcntl, [UInt64(inherited), UInt64(F_DUPFD_CLOEXEC), UInt64(max(high, inherited + 1))]),
            (SyscallNumber.close, [UInt64(inherited)]),
        ])
        return Int32(truncatingIfNeeded: r[0])
    }

    /// takeFd for each of `ours`, in order; through the pidfd in one batch.
    func takeFds(_ ours: [Int32], pidfd: Int32) throws -> [Int32] {
        guard restorerSocket == nil else { return try ours.map { try takeFd($0, pidfd: pidfd) } }
        return try askAll({ "pidfd_getfd \(ours[$0])" }, ours.map { (SyscallNumber.pidfdGetfd, [UInt64(pidfd), UInt64($0), 0]) })
            .map { Int32(truncatingIfNeeded: $0) }
    }

    /// The fd table (unless the parent already filled the one this process shares), then
    /// cwd, root and umask (unless shared with the parent's).
    func installFiles(resources: RestoreResources, pidfd: Int32) throws {
        if filesShare?.filled != true {
            try installFds(image.fds) { entries in try takeFds(try entries.map { try resources.fd(for: $0.id) }, pidfd: pidfd) }
            try armAsync(resources: resources)
            try registerEpollTargets(resources: resources)
            filesShare?.filled = true
        }
        if !sharesParentFs { try installFs(resources: resources, pidfd: pidfd) }
        try restoreFileLocks(resources.images.fileLocks)
    }

    private func installFs(resources: RestoreResources, pidfd: Int32) throws {
        let cwd = try takeFd(try resources.fd(for: image.fs.cwdID), pidfd: pidfd)
        var root: Int32?
        if let r = resources.images.files[image.fs.rootID], r.reg.name != "/" {
            root = try takeFd(try resources.fd(for: image.fs.rootID), pidfd: pidfd)
        }
        try setFs(root: root, cwd: cwd, umask: image.fs.umask)
    }
}
