/// Where the host's cgroup controllers live, read from /proc/self/mountinfo.
///
/// Hosts come in three shapes: pure cgroup v2 (one `cgroup2` mount holding every controller),
/// pure v1 (one `cgroup` mount per controller or per group of controllers) and "hybrid" (v1
/// controllers plus a `cgroup2` mount with few or none). Lamina decides per controller: the v2
/// backend when the unified hierarchy holds every controller a sandbox needs, else the v1 backend
/// when the v1 hierarchies do.
public struct CgroupLayout: Sendable, Equatable {
    /// v1 controller name (memory, cpu, cpuacct, pids, freezer, ...) -> its mount point.
    public var v1Hierarchies: [String: String]
    /// The cgroup2 mount, if any, and the controllers available at its root.
    public var unifiedMount: String?
    public var unifiedControllers: Set<String>

    public static let v1Required = ["memory", "cpu", "cpuacct", "pids", "freezer"]
    public static let v2Required: Set<String> = ["memory", "cpu", "pids"]

    public init(v1Hierarchies: [String: String], unifiedMount: String?, unifiedControllers: Set<String>) {
        self.v1Hierarchies = v1Hierarchies
        self.unifiedMount = unifiedMount
        self.unifiedControllers = unifiedControllers
    }

    /// Reads the layout of the running host.
    public static func probe() throws(SystemError) -> CgroupLayout {
        let mountinfo = try FileIO.read("/proc/self/mountinfo")
        var layout = parse(mountinfo: mountinfo)
        if let unified = layout.unifiedMount {
            let controllers = (try? FileIO.read(unified + "/cgroup.controllers")) ?? ""
            layout.unifiedControllers = Set(controllers.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        }
        return layout
    }

    /// Parses /proc/self/mountinfo (see proc(5)): `id parent dev root mountpoint options [optional...] - fstype source superoptions`.
    public static func parse(mountinfo: String) -> CgroupLayout {
        var v1: [String: String] = [:]
        var unified: String?
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let dash = fields.firstIndex(of: "-"), dash >= 5, fields.count >= dash + 4 else { continue }
            let mountPoint = unescapeMountinfo(String(fields[4]))
            let fstype = fields[dash + 1]
            let superOptions = fields[dash + 3].split(separator: ",").map(String.init)
            switch fstype {
            case "cgroup2":
                // The first cgroup2 mount wins; bind mounts of it elsewhere do not matter.
                if unified == nil { unified = mountPoint }
            case "cgroup":
                for option in superOptions where knownV1Controllers.contains(option) {
                    if v1[option] == nil { v1[option] = mountPoint }
                }
            default:
                continue
            }
        }
        return CgroupLayout(v1Hierarchies: v1, unifiedMount: unified, unifiedControllers: [])
    }

    static let knownV1Controllers: Set<String> = [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio", "perf_event",
        "net_prio", "hugetlb", "pids", "rdma", "misc",
    ]

    /// mountinfo escapes space, tab, newline and backslash as octal.
    static func unescapeMountinfo(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
               let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public enum Choice: Sendable, Equatable {
        case v2(mount: String)
        case v1(hierarchies: [String: String])
    }

    /// Picks the backend for sandboxes on this host, or says which controllers are missing.
    public func choose() throws(SandboxError) -> Choice {
        if let unifiedMount, Self.v2Required.isSubset(of: unifiedControllers) {
            return .v2(mount: unifiedMount)
        }
        let missingV1 = Self.v1Required.filter { v1Hierarchies[$0] == nil }
        if missingV1.isEmpty {
            return .v1(hierarchies: v1Hierarchies.filter { Self.v1Required.contains($0.key) })
        }
        let v2Missing = Self.v2Required.subtracting(unifiedControllers).sorted()
        throw .unsupportedHost(
            "no usable cgroup controllers: cgroup v2 lacks \(v2Missing.joined(separator: ", "))"
                + (unifiedMount.map { " at \($0)" } ?? " (no cgroup2 mount)")
                + " and cgroup v1 lacks \(missingV1.joined(separator: ", ")); mount them or enable them in cgroup.subtree_control")
    }
}
