import LaminaSandbox
import Testing

/// How the host's cgroup layout is read and which backend it selects: fixtures of real mountinfo.
@Suite("cgroup layout")
struct CgroupLayoutTests {
    static let hybrid = """
        25 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
        26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
        27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
        30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
        31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
        32 25 0:29 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
        33 25 0:30 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,freezer
        """

    static let pureV2 = """
        22 27 0:20 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
        27 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
        29 26 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
        """

    @Test func hybridHostUsesTheV1HierarchiesIncludingCoMountedOnes() throws {
        var layout = CgroupLayout.parse(mountinfo: Self.hybrid)
        #expect(layout.unifiedMount == "/sys/fs/cgroup/unified")
        #expect(layout.v1Hierarchies["cpu"] == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(layout.v1Hierarchies["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(layout.v1Hierarchies["memory"] == "/sys/fs/cgroup/memory")
        layout.unifiedControllers = ["hugetlb"]
        guard case .v1(let hierarchies) = try layout.choose() else { Issue.record("expected v1"); return }
        #expect(Set(hierarchies.keys) == ["memory", "cpu", "cpuacct", "pids", "freezer"])
    }

    @Test func pureV2HostUsesTheUnifiedHierarchy() throws {
        var layout = CgroupLayout.parse(mountinfo: Self.pureV2)
        layout.unifiedControllers = ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"]
        #expect(try layout.choose() == .v2(mount: "/sys/fs/cgroup"))
    }

    @Test func hostWithoutControllersIsRefusedWithTheMissingOnesNamed() {
        var layout = CgroupLayout.parse(mountinfo: Self.pureV2)
        layout.unifiedControllers = ["cpu"]
        #expect {
            try layout.choose()
        } throws: { error in
            let text = "\(error)"
            return text.contains("memory") && text.contains("pids") && text.contains("freezer")
        }
    }

    @Test func escapedMountPointsAreDecoded() {
        let layout = CgroupLayout.parse(mountinfo: "40 25 0:31 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,pids")
        #expect(layout.v1Hierarchies["pids"] == "/sys/fs/cgroup/with space")
    }

    @Test func thisHostIsUsable() throws {
        let layout = try CgroupLayout.probe()
        _ = try layout.choose()
    }
}
