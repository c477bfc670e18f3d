import LinuxKernel
import Testing
@testable import Engine
import Images

@Suite("registers and FPU state")
struct RegistersTests {
    @Test("a task stopped in a restartable syscall re-runs it on resume",
          arguments: [-512, -513, -514, -516])
    func restartsInterruptedSyscall(_ code: Int64) {
        var r = Registers()
        r.orig_rax = 35  // nanosleep
        r.rax = UInt64(bitPattern: code)
        r.rip = 0x401000
        let out = RestoredProcess.resumable(r)
        #expect(out.rax == 35)
        #expect(out.rip == 0x400ffe)
        #expect(out.orig_rax == UInt64.max)
    }

    @Test("a finished syscall's result and a task outside any syscall are left alone")
    func leavesResultsAlone() {
        var r = Registers()
        r.orig_rax = 0; r.rax = UInt64(bitPattern: -4); r.rip = 0x1234  // read() returned -EINTR
        #expect(RestoredProcess.resumable(r).rax == UInt64(bitPattern: -4))
        #expect(RestoredProcess.resumable(r).rip == 0x1234)
        r.orig_rax = UInt64.max; r.rax = UInt64(bitPattern: -512)
        #expect(RestoredProcess.resumable(r).rip == 0x1234)
    }

    @Test("general registers survive the image entry")
    func generalRegistersRoundTrip() {
        var r = Registers()
        r.r15 = 1; r.rbx = 2; r.rax = 3; r.rip = 4; r.rsp = 5; r.fs_base = 6; r.gs_base = 7; r.eflags = 0x246
        let back = UserX86RegsEntry(r).registers
        #expect(back.r15 == 1 && back.rbx == 2 && back.rax == 3 && back.rip == 4)
        #expect(back.rsp == 5 && back.fs_base == 6 && back.gs_base == 7 && back.eflags == 0x246)
    }

    @Test("an XSAVE area survives CRIU's fpregs entry")
    func xsaveRoundTrip() throws {
        let size = XSaveLayout.components.values.map { $0.offset + $0.size }.max() ?? 576
        var area = [UInt8](repeating: 0, count: max(size, 576))
        for i in 0..<512 where !(464..<512).contains(i) { area[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
        // xstate_bv: x87, SSE and every component this CPU has.
        var bv: UInt64 = 3
        for (n, c) in XSaveLayout.components where [2, 5, 6, 7, 9].contains(n) {
            bv |= 1 << UInt64(n)
            for i in 0..<c.size { area[c.offset + i] = UInt8(truncatingIfNeeded: i &+ n) }
        }
        withUnsafeBytes(of: bv) { for i in 0..<8 { area[512 + i] = $0[i] } }
        let entry = UserX86FpregsEntry(xsave: area)
        var restored = [UInt8](repeating: 0, count: area.count)
        entry.apply(to: &restored)
        // 416..<512 is reserved (and partly the kernel's): apply() leaves it alone.
        #expect(Array(restored[0..<416]) == Array(area[0..<416]))
        #expect(Array(restored[512..<520]) == Array(area[512..<520]))
        for (n, c) in XSaveLayout.components where [2, 5, 6, 7, 9].contains(n) {
            #expect(Array(restored[c.offset..<(c.offset + c.size)]) == Array(area[c.offset..<(c.offset + c.size)]), "component \(n)")
        }
    }
}
