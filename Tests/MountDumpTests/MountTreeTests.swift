import Foundation
import Testing
import MountDump
import ProcFS

@Suite struct MountTreeTests {
    static let sample = """
    22 27 0:21 / /proc rw,relatime shared:5 - proc proc rw
    24 27 0:6 / /dev rw,relatime master:1 - devtmpfs devtmpfs rw,size=12334492k,mode=755
    27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
    26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
    29 26 0:26 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
    40 27 254:0 /srv/data\\040dir /mnt/with\\040space\\011tab ro,nosuid shared:7 master:3 propagate_from:2 - ext4 /dev/my\\134disk rw
    41 27 0:40 / /mnt/private rw unbindable - tmpfs none rw
    """

    @Test func buildsParentChildLinksAndOrder() throws {
        let tree = MountTree(try MountInfoEntry.parse(Self.sample))
        #expect(tree.roots.map(\.mountID) == [27])
        #expect(tree.children(of: 27).map(\.mountID) == [22, 24, 40, 41])
        #expect(tree.children(of: 26).map(\.mountID) == [29])
        #expect(tree.parent(of: tree.mount(id: 29)!)?.mountID == 26)
        #expect(tree.ordered.map(\.mountID) == [27, 22, 24, 26, 29, 40, 41])
    }

    @Test func keepsMountsOfAParentCycle() throws {
        let text = """
        1 0 0:1 / / rw - tmpfs none rw
        5 6 0:5 / /a rw - tmpfs none rw
        6 5 0:6 / /b rw - tmpfs none rw
        """
        let tree = MountTree(try MountInfoEntry.parse(text))
        #expect(tree.ordered.map(\.mountID) == [1, 5, 6])
    }

    @Test func readsOwnMountTree() throws {
        let tree = try MountTree.read(pid: getpid())
        #expect(!tree.roots.isEmpty)
        #expect(tree.ordered.count == tree.mounts.count)
        #expect(tree.mounts.contains { $0.mountPoint == "/" })
        #expect(tree.mounts.contains { $0.mountPoint == "/proc" && $0.fsType == "proc" })
        var position: [Int: Int] = [:]
        for (i, m) in tree.ordered.enumerated() { position[m.mountID] = i }
        for m in tree.ordered {
            if let parent = tree.parent(of: m) { #expect(position[parent.mountID]! < position[m.mountID]!) }
        }
    }
}
