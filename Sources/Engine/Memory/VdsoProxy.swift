import Foundation
import LinuxKernel
import Images
import ProcFS

/// The functions a vdso exports: name -> offset from its start, read from its ELF
/// .dynsym (a vdso is linked at address 0, so a symbol's value is its offset).
enum VdsoSymbols {
    static func read(_ base: UnsafeRawPointer, size: Int) -> [String: UInt64] {
        func u16(_ at: Int) -> Int { Int(base.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
        func u32(_ at: Int) -> Int { Int(base.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        func u64(_ at: Int) -> Int { Int(truncatingIfNeeded: base.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        guard size > 64, u32(0) == 0x464c_457f else { return [:] }
        let (shoff, shentsize, shnum) = (u64(0x28), u16(0x3a), u16(0x3c))
        var symbols: [String: UInt64] = [:]
        for i in 0..<shnum {
            let sh = shoff + i * shentsize
            guard sh + 64 <= size, u32(sh + 4) == 11 /* SHT_DYNSYM */ else { continue }
            let (offset, length, entsize) = (u64(sh + 0x18), u64(sh + 0x20), max(u64(sh + 0x38), 24))
            let strings = shoff + u32(sh + 0x28) * shentsize
            guard strings + 64 <= size else { continue }
            let (strOffset, strSize) = (u64(strings + 0x18), u64(strings + 0x20))
            var sym = offset
            while sym + 24 <= min(offset + length, size) {
                let name = u32(sym), info = Int(base.load(fromByteOffset: sym + 4, as: UInt8.self)), value = u64(sym + 8)
                if info & 0xf == 2 /* STT_FUNC */, value != 0, name < strSize, strOffset + name < size {
                    symbols[String(cString: (base + strOffset + name).assumingMemoryBound(to: CChar.self))] = UInt64(value)
                }
                sym += entsize
            }
        }
        return symbols
    }

    /// The running kernel's vdso, as this process has it (every process gets the same).
    static let running: (symbols: [String: UInt64], size: Int) = {
        let area = (try? ProcMaps.parse(maps: readProcFile("/proc/self/maps")))?.first { $0.path == "[vdso]" }
        guard let area, let pointer = UnsafeRawPointer(bitPattern: UInt(area.start)) else { return ([:], 0) }
        return (read(pointer, size: Int(area.size)), Int(area.size))
    }()
}

extension RestoredProcess {
    /// Whether the running kernel's vdso can stand where the dumped one was: the same size
    /// and every function at the same offset (glibc keeps pointers into it).
    func runningVdsoFits(_ saved: SavedPages) -> Bool {
        guard let vdso = image.mm.vmas.first(where: { $0.status & VmaStatus.vdso != 0 }) else { return true }
        guard let dumped = saved.page(at: vdso.start) else { return true }
        let running = VdsoSymbols.running
        return Int(vdso.end - vdso.start) == running.size && VdsoSymbols.read(dumped, size: running.size) == running.symbols
    }

    /// A vdso the running kernel cannot stand in for (another kernel, or vvar of another
    /// size): as CRIU's proxy, the dumped vdso goes back at its address with each of its
    /// functions turned into a jump to the same function of the running vdso, which stays
    /// with its vvar where the stub has them (`specials`, clear of every dumped area).
    func proxyVdso(_ saved: SavedPages, specials: [MemoryArea], spare: UInt64) throws {
        guard let vdso = image.mm.vmas.first(where: { $0.status & VmaStatus.vdso != 0 }),
              let real = specials.first(where: { $0.path == "[vdso]" }), let first = specials.map(\.start).min() else {
            throw CheckpointError(.unsupported, "pid \(pid): the vdso/vvar layout of this kernel (\(specials.map { "\($0.path) \($0.size)" })) differs from the dumped one and there is no vdso to proxy")
        }
        let size = Int(vdso.end - vdso.start)
        var code = [UInt8](repeating: 0, count: size)
        let pieces = saved.pieces(within: [(vdso.start, vdso.end)])
        guard pieces.reduce(0, { $0 + $1.length }) == size else {
            throw CheckpointError(.image, "pid \(pid): the dumped vdso at \(vdso.start.hex) is not saved whole: no proxy can be built")
        }
        for p in pieces { code.withUnsafeMutableBytes { ($0.baseAddress! + Int(p.address - vdso.start)).copyMemory(from: p.data, byteCount: p.length) } }
        // Out of the way first: the real vdso and vvar keep their order at `spare`.
        if first != spare {
            for area in specials.sorted(by: { $0.start < $1.start }) {
                try call("mremap \(area.path)", SyscallNumber.mremap, area.start, area.size, area.size, UInt64(MremapFlag.mayMoveFixed), spare + (area.start - first))
            }
        }
        let target = spare + (real.start - first)
        let dumped = code.withUnsafeBytes { VdsoSymbols.read($0.baseAddress!, size: size) }
        for (name, offset) in dumped {
            guard let to = VdsoSymbols.running.symbols[name], Int(offset) + 12 <= size else { continue }
            // movabs rax, target; jmp rax: rax is the return register, free at entry.
            code.replaceSubrange(Int(offset)..<Int(offset) + 12, with: [0x48, 0xb8] + bytes(target + to) + [0xff, 0xe0])
        }
        let anon = UInt64(UInt32(bitPattern: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED))
        try call("mmap vdso proxy at \(vdso.start.hex)", SyscallNumber.mmap, vdso.start, UInt64(size), UInt64(PROT_READ | PROT_WRITE), anon, UInt64.max, 0)
        try code.withUnsafeBytes { try memory.scatterIn([PagePiece(address: vdso.start, data: $0.baseAddress!, length: size)]) }
        try call("mprotect vdso proxy", SyscallNumber.mprotect, vdso.start, UInt64(size), UInt64(vdso.prot))
    }
}
