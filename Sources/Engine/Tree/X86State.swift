import Foundation
import LinuxKernel
import CShim
import Images

/// General registers <-> CRIU's user_x86_regs_entry.
extension UserX86RegsEntry {
    init(_ r: Registers) {
        self.init()
        r15 = r.r15; r14 = r.r14; r13 = r.r13; r12 = r.r12; bp = r.rbp; bx = r.rbx
        r11 = r.r11; r10 = r.r10; r9 = r.r9; r8 = r.r8; ax = r.rax; cx = r.rcx; dx = r.rdx
        si = r.rsi; di = r.rdi; origAx = r.orig_rax; ip = r.rip; cs = r.cs; flags = r.eflags
        sp = r.rsp; ss = r.ss; fsBase = r.fs_base; gsBase = r.gs_base; ds = r.ds; es = r.es
        fs = r.fs; gs = r.gs; mode = .native
    }

    var registers: Registers {
        var r = Registers()
        r.r15 = r15; r.r14 = r14; r.r13 = r13; r.r12 = r12; r.rbp = bp; r.rbx = bx
        r.r11 = r11; r.r10 = r10; r.r9 = r9; r.r8 = r8; r.rax = ax; r.rcx = cx; r.rdx = dx
        r.rsi = si; r.rdi = di; r.orig_rax = origAx; r.rip = ip; r.cs = cs; r.eflags = flags
        r.rsp = sp; r.ss = ss; r.fs_base = fsBase; r.gs_base = gsBase; r.ds = ds; r.es = es
        r.fs = fs; r.gs = gs
        return r
    }
}

/// The XSAVE area (standard layout, as the ptrace regset gives it) <-> CRIU's fpregs entry:
/// the 512-byte legacy FXSAVE part, the header's xstate_bv, and one field per component.
enum XSaveLayout {
    struct Component { let number: UInt32; let offset: Int; let size: Int }

    /// Offsets and sizes of the extended components this CPU has (CPUID leaf 0xD).
    static let components: [Int: Component] = {
        var out: [Int: Component] = [:]
        var r: [UInt32] = [0, 0, 0, 0]
        oc_cpuid(0xD, 0, &r)
        let supported = UInt64(r[0]) | (UInt64(r[3]) << 32)
        for i in 2..<64 where supported & (1 << UInt64(i)) != 0 {
            oc_cpuid(0xD, UInt32(i), &r)
            out[i] = Component(number: UInt32(i), offset: Int(r[1]), size: Int(r[0]))
        }
        return out
    }()

    // Component numbers CRIU names: YMM_Hi128, BNDREGS, BNDCSR, opmask, ZMM_Hi256, Hi16_ZMM, PKRU.
    static let ymm = 2, bndregs = 3, bndcsr = 4, opmask = 5, zmmHi256 = 6, hi16Zmm = 7, pkru = 9
}

extension UserX86FpregsEntry {
    init(xsave area: [UInt8]) {
        self.init()
        func u16(_ o: Int) -> UInt32 { UInt32(area[o]) | UInt32(area[o + 1]) << 8 }
        func u32s(_ o: Int, _ n: Int) -> [UInt32] { (0..<n).map { i in area.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o + i * 4, as: UInt32.self) } } }
        func u64(_ o: Int) -> UInt64 { area.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt64.self) } }
        cwd = u16(0); swd = u16(2); twd = u16(4); fop = u16(6)
        rip = u64(8); rdp = u64(16)
        mxcsr = u32s(24, 1)[0]; mxcsrMask = u32s(28, 1)[0]
        stSpace = u32s(32, 32); xmmSpace = u32s(160, 64); padding = u32s(416, 24)
        guard area.count > 576 else { return }
        var x = UserX86XsaveEntry()
        x.xstateBv = u64(512)
        let c = XSaveLayout.components
        func words(_ n: Int) -> [UInt32] { c[n].map { u32s($0.offset, $0.size / 4) } ?? [] }
        func quads(_ n: Int) -> [UInt64] { c[n].map { comp in (0..<(comp.size / 8)).map { u64(comp.offset + $0 * 8) } } ?? [] }
        x.ymmhSpace = words(XSaveLayout.ymm)
        x.bndregState = quads(XSaveLayout.bndregs)
        x.bndcsrState = quads(XSaveLayout.bndcsr)
        x.opmaskReg = quads(XSaveLayout.opmask)
        x.zmmUpper = quads(XSaveLayout.zmmHi256)
        x.hi16Zmm = quads(XSaveLayout.hi16Zmm)
        x.pkru = words(XSaveLayout.pkru)
        xsave = x
    }

    /// Writes this state over `area` (a current XSAVE area of the target thread, which
    /// supplies the layout and size).
    func apply(to area: inout [UInt8]) {
        func put16(_ o: Int, _ v: UInt32) { area[o] = UInt8(v & 0xff); area[o + 1] = UInt8((v >> 8) & 0xff) }
        func put32(_ o: Int, _ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { for i in 0..<4 { area[o + i] = $0[i] } } }
        func put64(_ o: Int, _ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { for i in 0..<8 { area[o + i] = $0[i] } } }
        put16(0, cwd); put16(2, swd); put16(4, twd); put16(6, fop)
        put64(8, rip); put64(16, rdp); put32(24, mxcsr); put32(28, mxcsrMask)
        for (i, v) in stSpace.prefix(32).enumerated() { put32(32 + i * 4, v) }
        for (i, v) in xmmSpace.prefix(64).enumerated() { put32(160 + i * 4, v) }
        guard hasXsave, area.count > 576 else { return }
        let c = XSaveLayout.components
        put64(512, xsave.xstateBv)
        func putWords(_ n: Int, _ w: [UInt32]) { if let comp = c[n], comp.offset + comp.size <= area.count { for (i, v) in w.prefix(comp.size / 4).enumerated() { put32(comp.offset + i * 4, v) } } }
        func putQuads(_ n: Int, _ q: [UInt64]) { if let comp = c[n], comp.offset + comp.size <= area.count { for (i, v) in q.prefix(comp.size / 8).enumerated() { put64(comp.offset + i * 8, v) } } }
        putWords(XSaveLayout.ymm, xsave.ymmhSpace)
        putQuads(XSaveLayout.bndregs, xsave.bndregState)
        putQuads(XSaveLayout.bndcsr, xsave.bndcsrState)
        putQuads(XSaveLayout.opmask, xsave.opmaskReg)
        putQuads(XSaveLayout.zmmHi256, xsave.zmmUpper)
        putQuads(XSaveLayout.hi16Zmm, xsave.hi16Zmm)
        putWords(XSaveLayout.pkru, xsave.pkru)
    }
}
