import Testing
@testable import ProcFS

@Suite("/proc/PID/timers")
struct PosixTimerListingTests {
    @Test("signal, thread-directed and SIGEV_NONE timers on several clocks")
    func parse() throws {
        let text = """
        ID: 2
        signal: 37/0000000000003333
        notify: signal/tid.15412
        ClockID: 7
        ID: 4
        signal: 0/0000000000000000
        notify: none/pid.15410
        ClockID: -6
        ID: 0
        signal: 35/00007f0000001111
        notify: signal/pid.15410
        ClockID: 1

        """
        let t = try PosixTimerListing.parse(text)
        #expect(t.map(\.id) == [2, 4, 0])
        #expect(t[0] == PosixTimerListing(id: 2, signal: 37, value: 0x3333, notify: 4, target: 15412, clock: 7))
        #expect(t[1].notify == 1 && t[1].clock == -6 && t[1].signal == 0)
        #expect(t[2].value == 0x7f00_0000_1111 && t[2].notify == 0 && t[2].target == 15410)
        #expect(try PosixTimerListing.parse("").isEmpty)
    }

    @Test("a line proc(5) does not describe is an error naming the file")
    func bad() {
        #expect(throws: ProcFSError.self) { try PosixTimerListing.parse("ID: 1\nnotify: signal\n") }
        #expect(throws: ProcFSError.self) { try PosixTimerListing.parse("ID: x\n") }
    }
}
