import Foundation
import Testing
@testable import ProcFS

@Suite struct TaskStatTests {
    // comm "a) (b c)" is legal: only the last ")" ends it.
    static let sample = "4121 (a) (b c)) S 4100 4100 4100 34816 4130 4194560 96 0 0 0 7 3 0 0 20 0 3 0 40613 "
        + "3133440 360 18446744073709551615 94918085640192 94918085660073 140732040771232 0 0 0 "
        + "65536 4096 19010 0 0 0 17 1 0 0 0 0 0 94918085676080 94918085677696 94918571413504 "
        + "140732040772302 140732040772322 140732040772322 140732040773611 0\n"

    @Test func parsesCommWithParenthesesAndSpaces() throws {
        let s = try TaskStat.parse(Self.sample)
        #expect(s.pid == 4121)
        #expect(s.comm == "a) (b c)")
        #expect(s.state == "S")
        #expect(s.ppid == 4100 && s.pgrp == 4100 && s.session == 4100)
        #expect(s.ttyNr == 34816 && s.tpgid == 4130)
        #expect(s.flags == 4194560)
    }

    @Test func parsesNumberedFields() throws {
        let s = try TaskStat.parse(Self.sample)
        #expect(s.utime == 7 && s.stime == 3)
        #expect(s.priority == 20 && s.nice == 0 && s.numThreads == 3)
        #expect(s.startTime == 40613 && s.vsize == 3133440)
        #expect(s.startCode == 94918085640192 && s.endCode == 94918085660073)
        #expect(s.startStack == 140732040771232)
        #expect(s.exitSignal == 17 && s.processor == 1)
        #expect(s.startData == 94918085676080 && s.endData == 94918085677696)
        #expect(s.startBrk == 94918571413504)
        #expect(s.argStart == 140732040772302 && s.argEnd == 140732040772322)
        #expect(s.envStart == 140732040772322 && s.envEnd == 140732040773611)
        #expect(s.exitCode == 0)
    }

    @Test func truncatedStatThrows() {
        #expect(throws: ProcFSError.self) { try TaskStat.parse("12 (x) S 1 2 3") }
        #expect(throws: ProcFSError.self) { try TaskStat.parse("12 x S 1 2 3") }
    }

    @Test func readsOwnStat() throws {
        let s = try TaskStat.read(pid: getpid())
        #expect(s.pid == getpid() && s.ppid == getppid())
        // tests run in parallel, so the main thread may sleep; the calling thread runs
        let own = try TaskStat.parse(readProcFile("/proc/thread-self/stat"))
        #expect(own.state == "R")
        #expect(try ProcTree.threads(of: getpid()).contains(own.pid))
        #expect(s.numThreads >= 1)
        #expect(s.startBrk > 0 && s.argStart < s.argEnd)
        let areas = try ProcMaps.read(pid: getpid())
        #expect(areas.contains { $0.start <= s.startStack && s.startStack < $0.end && $0.path == "[stack]" })
    }
}
