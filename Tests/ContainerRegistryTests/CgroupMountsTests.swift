// Where a container's cgroups are, from mount entries alone: v1 controllers (joined ones
// and named hierarchies), cgroup2, a hierarchy mounted from below its root, escaped paths.

@testable import ContainerRegistry
import ProcFS
import Testing

@Suite struct CgroupMountsTests {
    static let mountInfo = """
    30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
    31 25 0:27 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
    32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
    33 25 0:29 /docker /sys/fs/cgroup/my\\040freezer rw,nosuid - cgroup cgroup rw,freezer
    34 25 0:28 / /elsewhere/cpu rw - cgroup cgroup rw,cpu,cpuacct
    """

    @Test func findsEachControllersDirectory() throws {
        let mounts = CgroupMounts(try MountInfoEntry.parse(Self.mountInfo))
        #expect(mounts.directory(controller: "", path: "/a") == "/sys/fs/cgroup/unified/a")
        #expect(mounts.directory(controller: "name=systemd", path: "/x.scope") == "/sys/fs/cgroup/systemd/x.scope")
        #expect(mounts.directory(controller: "cpuacct", path: "/c1") == "/sys/fs/cgroup/cpu,cpuacct/c1")
        #expect(mounts.directory(controller: "xattr", path: "/c1") == nil)
        #expect(mounts.directory(controller: "memory", path: "/c1") == nil)
    }

    @Test func mapsPathsOfAHierarchyMountedFromBelowItsRoot() throws {
        let mounts = CgroupMounts(try MountInfoEntry.parse(Self.mountInfo))
        #expect(mounts.directory(controller: "freezer", path: "/docker/c1") == "/sys/fs/cgroup/my freezer/c1")
        #expect(mounts.directory(controller: "freezer", path: "/docker") == "/sys/fs/cgroup/my freezer")
        #expect(mounts.directory(controller: "freezer", path: "/other/c1") == nil)
    }
}
