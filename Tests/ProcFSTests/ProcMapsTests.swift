import Foundation
import Testing
@testable import ProcFS

@Suite struct ProcMapsTests {
    static let smaps = """
    55e02821f000-55e028240000 rw-p 00000000 00:00 0                          [heap]
    Size:                132 kB
    Rss:                   8 kB
    Anonymous:             8 kB
    VmFlags: rd wr mr mw me ac 
    7f0f27000000-7f0f27001000 r--p 00001000 fe:00 253911                     /tmp/my dir/lib with  spaces.so
    Size:                  4 kB
    VmFlags: rd mr mw me 
    7f0f27100000-7f0f27102000 rw-s 00000000 00:01 1044                       /dev/zero (deleted)
    Size:                  8 kB
    VmFlags: rd wr sh mr mw me ms 
    7f0f27200000-7f0f27201000 r-xp 00000000 103:02 77                        /old/bin/tool (deleted)
    VmFlags: rd ex mr mw me 
    7f0f27300000-7f0f27301000 rw-s 00000000 00:01 9                          /memfd:buffer (deleted)
    VmFlags: rd wr sh mr mw me ms 
    7f0f27400000-7f0f27401000 rw-p 00000000 00:00 0                          [anon:arena]
    VmFlags: rd wr mr mw me ac 
    7f0f27500000-7f0f27501000 rw-s 00000000 00:01 10                         [anon_shmem:ring]
    VmFlags: rd wr sh mr mw me ms 
    7f0f27600000-7f0f27601000 ---p 00000000 00:00 0 
    VmFlags: mr mw me 
    7f0f278a4000-7f0f278a8000 r--p 00000000 00:00 0                          [vvar]
    VmFlags: rd mr pf io de dd 
    7f0f278a8000-7f0f278aa000 r--p 00000000 00:00 0                          [vvar_vclock]
    VmFlags: rd mr pf io de dd 
    7f0f278aa000-7f0f278ac000 r-xp 00000000 00:00 0                          [vdso]
    VmFlags: rd ex mr mw me de 
    7ffedf3c6000-7ffedf3e7000 rw-p 00000000 00:00 0                          [stack]
    VmFlags: rd wr mr mw me gd ac 
    ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
    VmFlags: ex 
    """

    @Test func parsesSmapsColumnsAndFlags() throws {
        let areas = try ProcMaps.parse(smaps: Self.smaps)
        #expect(areas.count == 13)
        let heap = areas[0]
        #expect(heap.start == 0x55e0_2821_f000 && heap.end == 0x55e0_2824_0000)
        #expect(heap.size == 0x21000)
        #expect(heap.readable && heap.writable && !heap.executable && !heap.shared)
        #expect(heap.path == "[heap]")
        #expect(heap.vmFlags == ["rd", "wr", "mr", "mw", "me", "ac"])
        #expect(heap.isAnonymous && !heap.isSpecial && !heap.isFileBacked)
        #expect(areas[12].start == 0xffff_ffff_ff60_0000)
    }

    @Test func keepsSpacesInPaths() throws {
        let lib = try ProcMaps.parse(smaps: Self.smaps)[1]
        #expect(lib.path == "/tmp/my dir/lib with  spaces.so")
        #expect(lib.offset == 0x1000 && lib.devMajor == 0xfe && lib.devMinor == 0 && lib.inode == 253911)
        #expect(lib.isFileBacked && !lib.isAnonymous && !lib.isDeletedFile)
    }

    @Test func classifiesDeletedAndSharedAnonymous() throws {
        let areas = try ProcMaps.parse(smaps: Self.smaps)
        let zero = areas[2]
        #expect(zero.shared && zero.isSharedAnonymous && zero.isAnonymous && !zero.isDeletedFile)
        let tool = areas[3]
        #expect(tool.isDeletedFile && tool.filePath == "/old/bin/tool" && tool.devMajor == 0x103)
        let memfd = areas[4]
        #expect(memfd.isMemfd && memfd.isDeletedFile && !memfd.isSharedAnonymous)
        #expect(areas[5].path == "[anon:arena]" && areas[5].isAnonymous)
        #expect(areas[6].isSharedAnonymous)
        #expect(areas[7].path == "" && areas[7].isGuardOrNoAccess && areas[7].isAnonymous)
    }

    @Test func marksVdsoVvarAndVsyscallSpecial() throws {
        let special = try ProcMaps.parse(smaps: Self.smaps).filter(\.isSpecial).map(\.path)
        #expect(special == ["[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]"])
        #expect(try ProcMaps.parse(smaps: Self.smaps).filter(\.isSpecial).allSatisfy { !$0.isAnonymous })
    }

    @Test func mapsAndSmapsAgreeApartFromFlags() throws {
        let mapsText = Self.smaps.split(separator: "\n")
            .filter { $0.first.map { $0.isHexDigit && $0.isLowercase || $0.isNumber } ?? false }
            .joined(separator: "\n")
        let fromMaps = try ProcMaps.parse(maps: mapsText)
        var fromSmaps = try ProcMaps.parse(smaps: Self.smaps)
        for i in fromSmaps.indices { fromSmaps[i].vmFlags = [] }
        #expect(fromMaps == fromSmaps)
    }

    @Test func rejectsGarbage() {
        #expect(throws: ProcFSError.self) { try ProcMaps.parse(maps: "zz-10 rw-p 0 00:00 0") }
        #expect(throws: ProcFSError.self) { try ProcMaps.parse(maps: "1000-2000 rw-p 0 00:00") }
        #expect(throws: ProcFSError.self) { try ProcMaps.parse(maps: "2000-1000 rw-p 0 00:00 0") }
        #expect(throws: ProcFSError.self) { try ProcMaps.parse(maps: "1000-2000 rw 0 00:00 0") }
        #expect(throws: ProcFSError.self) { try ProcMaps.parse(maps: "1000-2000 rw-p 0 0x:00 0") }
        #expect(throws: ProcFSError.self) { try ProcMaps.parse(maps: "1000-2000 rw-p 0 00:00 12a") }
        #expect(throws: ProcFSError.self) { try ProcMaps.parse(maps: "1-10000000000000000 rw-p 0 00:00 0") }
    }

    @Test func keepsPathsAsWritten() throws {
        let areas = try ProcMaps.parse(maps: """
            7f0000000000-7f0000001000 rw-s 00002000 00:01 4242                       /memfd:a b (deleted)
            7f0000001000-7f0000002000 r--p 00000000 fd:01 99 /usr/lib/x
            7f0000002000-7f0000003000 ---p 00000000 00:00 0
            """)
        #expect(areas.map(\.path) == ["/memfd:a b (deleted)", "/usr/lib/x", ""])
        #expect(areas[0].shared && areas[0].offset == 0x2000 && areas[0].devMinor == 1 && areas[0].inode == 4242)
        #expect(areas[1].devMajor == 0xfd && areas[1].readable && !areas[1].writable)
        #expect(areas[2].start == 0x7f0000002000 && areas[2].end == 0x7f0000003000 && !areas[2].readable)
    }

    @Test func readsOwnSmaps() throws {
        let areas = try ProcMaps.read(pid: getpid())
        #expect(areas.contains { $0.path == "[stack]" })
        #expect(areas.contains { $0.path == "[vdso]" })
        #expect(areas.allSatisfy { !$0.vmFlags.isEmpty })
        #expect(zip(areas, areas.dropFirst()).allSatisfy { $0.end <= $1.start })
        let exe = try ProcTree.link("/proc/self/exe")
        #expect(areas.contains { $0.path == exe && $0.executable })
    }

    @Test func readingMissingProcessNamesThePath() {
        do {
            _ = try ProcMaps.read(pid: Int32.max)
            Issue.record("expected an error")
        } catch let error as ProcFSError {
            #expect(error.path == "/proc/\(Int32.max)/smaps")
            #expect(error.errno == ENOENT)
            #expect(error.description == "/proc/\(Int32.max)/smaps: No such file or directory")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
