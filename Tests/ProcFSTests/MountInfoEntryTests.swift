import Foundation
import Testing
import ProcFS

@Suite struct MountInfoEntryTests {
    static let sample = """
    22 27 0:21 / /proc rw,relatime shared:5 - proc proc rw
    24 27 0:6 / /dev rw,relatime master:1 - devtmpfs devtmpfs rw,size=12334492k,mode=755
    27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
    26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
    29 26 0:26 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
    40 27 254:0 /srv/data\\040dir /mnt/with\\040space\\011tab ro,nosuid shared:7 master:3 propagate_from:2 - ext4 /dev/my\\134disk rw
    41 27 0:40 / /mnt/private rw unbindable - tmpfs none rw
    """

    @Test func parsesFieldsAndOptionalTags() throws {
        let mounts = try MountInfoEntry.parse(Self.sample)
        #expect(mounts.count == 7)
        let proc = mounts[0]
        #expect(proc.mountID == 22 && proc.parentID == 27 && proc.devMajor == 0 && proc.devMinor == 21)
        #expect(proc.root == "/" && proc.mountPoint == "/proc" && proc.fsType == "proc")
        #expect(proc.sharedGroup == 5 && proc.masterGroup == nil)
        #expect(mounts[1].masterGroup == 1 && mounts[1].superOptions == "rw,size=12334492k,mode=755")
        #expect(mounts[3].optionalFields.isEmpty && mounts[3].source == "devpts")
    }

    @Test func unescapesPathsAndSource() throws {
        let data = try MountInfoEntry.parse(Self.sample)[5]
        #expect(data.root == "/srv/data dir")
        #expect(data.mountPoint == "/mnt/with space\ttab")
        #expect(data.source == "/dev/my\\disk")
        #expect(data.isReadOnly && data.mountOptions == "ro,nosuid")
        #expect(data.sharedGroup == 7 && data.masterGroup == 3 && data.propagateFrom == 2)
        #expect(try MountInfoEntry.parse(Self.sample)[6].isUnbindable)
        #expect(MountInfoEntry.unescape("a\\04") == "a\\04")
    }

    @Test func rejectsLineWithoutSeparator() {
        #expect(throws: (any Error).self) { try MountInfoEntry.parse("22 27 0:21 / /proc rw proc proc rw") }
    }

    @Test func decodesSuperOptionsAfterSplittingAtCommas() throws {
        let line = "60 27 0:50 / /merged rw,relatime - overlay overlay rw,lowerdir=/l\\0541:/l2,upperdir=/u\\040x"
        let entry = try MountInfoEntry.parse(line: line[...])
        #expect(entry.superOptions == "rw,lowerdir=/l\\0541:/l2,upperdir=/u\\040x")
        #expect(entry.superOptionList == ["rw", "lowerdir=/l,1:/l2", "upperdir=/u x"])
    }

    /// The first lone "-" ends the optional fields, whatever follows it: a source may be "-"
    /// too, and the super options may be missing.
    @Test func splitsAtTheFirstSeparator() throws {
        let noOptional = try MountInfoEntry.parse(line: "5 1 0:5 / /x rw - tmpfs - rw,size=4k")
        #expect(noOptional.optionalFields.isEmpty && noOptional.fsType == "tmpfs" && noOptional.source == "-")
        #expect(noOptional.superOptionList == ["rw", "size=4k"])
        let bare = try MountInfoEntry.parse(line: "6 1 0:6 / /y rw shared:3 - tmpfs none")
        #expect(bare.optionalFields == ["shared:3"] && bare.superOptions == "" && bare.superOptionList.isEmpty)
        #expect(throws: (any Error).self) { try MountInfoEntry.parse(line: "7 1 0:7 / /z rw - tmpfs") }
    }

    @Test func rejectsBadNumbers() {
        #expect(throws: (any Error).self) { try MountInfoEntry.parse(line: "x 1 0:5 / /x rw - tmpfs none rw") }
        #expect(throws: (any Error).self) { try MountInfoEntry.parse(line: "5 1 0-5 / /x rw - tmpfs none rw") }
    }

    @Test func unescapesOnlyThreeOctalDigits() {
        #expect(MountInfoEntry.unescape("\\134") == "\\")
        #expect(MountInfoEntry.unescape("a\\012b") == "a\nb")
        #expect(MountInfoEntry.unescape("\\0401") == " 1")
        #expect(MountInfoEntry.unescape("\\9ab") == "\\9ab")
        #expect(MountInfoEntry.unescape("plain") == "plain")
    }

    @Test func readsOwnMountsAndNamesTheFileInErrors() throws {
        let own = try MountInfoEntry.read(pid: getpid())
        #expect(own.contains { $0.mountPoint == "/" })
        #expect(own.contains { $0.mountPoint == "/proc" && $0.fsType == "proc" })
        #expect(Set(own.map(\.mountID)).count == own.count)
        do {
            _ = try MountInfoEntry.read(pid: Int32.max)
            Issue.record("read a missing process")
        } catch let error as ProcFSError {
            #expect(error.path == "/proc/\(Int32.max)/mountinfo" && error.errno == ENOENT)
        }
    }
}
