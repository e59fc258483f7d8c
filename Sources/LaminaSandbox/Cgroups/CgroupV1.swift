#if canImport(Glibc)
import Glibc
#endif

/// cgroup v1: one directory per hierarchy (memory, cpu, cpuacct, pids, freezer; some may share a
/// mount, e.g. `cpu,cpuacct`). This development machine runs v1 for every controller.
public struct CgroupV1Backend: CgroupBackend {
    public let version = 1
    public let parent: String
    /// controller -> mount point of its hierarchy.
    let hierarchies: [String: String]

    public init(hierarchies: [String: String], parent: String) {
        self.hierarchies = hierarchies
        self.parent = parent
    }

    /// Distinct hierarchy mounts (co-mounted controllers share one).
    var mounts: [String] { Array(Set(hierarchies.values)).sorted() }

    func directory(_ controller: String, _ name: String) -> String {
        "\(hierarchies[controller]!)/\(parent)/\(name)"
    }

    public func prepare() throws(SystemError) {
        for mount in mounts {
            let path = "\(mount)/\(parent)"
            // Usually one mkdir (or none); the walk up is for nested parents only.
            if mkdir(path, 0o755) == 0 || errno == EEXIST { continue }
            try FileIO.makeDirectories(path)
        }
    }

    public func create(name: String, limits: ResourceLimits) throws(SystemError) -> any SandboxCgroup {
        var created: [String] = []
        do throws(SystemError) {
            for mount in mounts {
                let path = "\(mount)/\(parent)/\(name)"
                guard mkdir(path, 0o755) == 0 else { throw SystemError("mkdir", path: path) }
                created.append(path)
            }
            let memory = directory("memory", name)
            try FileIO.write("\(memory)/memory.limit_in_bytes", String(limits.memoryBytes))
            // Swap disabled: memory+swap may not exceed memory alone. Absent when the kernel has no swap accounting.
            if FileIO.exists("\(memory)/memory.memsw.limit_in_bytes") {
                try FileIO.write("\(memory)/memory.memsw.limit_in_bytes", String(limits.memoryBytes))
            }
            let cpu = directory("cpu", name)
            try FileIO.write("\(cpu)/cpu.cfs_period_us", String(cfsPeriodMicroseconds))
            try FileIO.write("\(cpu)/cpu.cfs_quota_us", String(cpuQuotaMicroseconds(cpus: limits.initialCPUs)))
            try FileIO.write("\(directory("pids", name))/pids.max", String(limits.pids))
            return try CgroupV1(backend: self, name: name)
        } catch {
            for path in created.reversed() { rmdir(path) }
            throw error
        }
    }

    public func existing(name: String) -> (any SandboxCgroup)? {
        guard mounts.contains(where: { FileIO.isDirectory("\($0)/\(parent)/\(name)") }) else { return nil }
        return CgroupV1(lenientBackend: self, name: name)
    }

    public func children() throws(SystemError) -> [String] {
        var names = Set<String>()
        for mount in mounts {
            for entry in try FileIO.list("\(mount)/\(parent)") where FileIO.isDirectory("\(mount)/\(parent)/\(entry)") {
                names.insert(entry)
            }
        }
        return names.sorted()
    }

    public func removeParentIfEmpty() {
        for mount in mounts { rmdir("\(mount)/\(parent)") }
    }
}

final class CgroupV1: SandboxCgroup, @unchecked Sendable {
    let name: String
    let backend: CgroupV1Backend
    private(set) var joinDescriptors: [Int32] = []
    private let freezerState: CgroupFile?
    private let maxUsage: CgroupFile?
    private let cpuUsage: CgroupFile?

    init(backend: CgroupV1Backend, name: String) throws(SystemError) {
        self.backend = backend
        self.name = name
        freezerState = try CgroupFile(backend.directory("freezer", name) + "/freezer.state", writable: true)
        maxUsage = try CgroupFile(backend.directory("memory", name) + "/memory.max_usage_in_bytes", writable: true)
        cpuUsage = try CgroupFile(backend.directory("cpuacct", name) + "/cpuacct.usage", writable: false)
        // The child joins by writing "0" to `tasks`, which moves only the writing thread. The child is
        // single-threaded, so that is the whole process, and unlike `cgroup.procs` the kernel then
        // skips the global threadgroup lock, whose write side waits for an RCU grace period (~8 ms
        // here on the first migration after a quiet spell, i.e. on every CLI start).
        for mount in backend.mounts {
            let path = "\(mount)/\(backend.parent)/\(name)/tasks"
            let fd = retryingEINTR { open(path, O_WRONLY | O_CLOEXEC) }
            guard fd >= 0 else {
                let error = SystemError("open", path: path)
                closeJoinDescriptors()
                throw error
            }
            joinDescriptors.append(fd)
        }
    }

    /// For a cgroup found on disk (possibly half-created by a crashed host): no open files needed.
    init(lenientBackend backend: CgroupV1Backend, name: String) {
        self.backend = backend
        self.name = name
        freezerState = try? CgroupFile(backend.directory("freezer", name) + "/freezer.state", writable: true)
        maxUsage = nil
        cpuUsage = nil
    }

    deinit { closeJoinDescriptors() }

    func closeJoinDescriptors() {
        for fd in joinDescriptors { close(fd) }
        joinDescriptors = []
    }

    private func directory(_ controller: String) -> String { backend.directory(controller, name) }

    func freeze() throws(SystemError) {
        guard let freezerState else { throw SystemError("open", path: directory("freezer") + "/freezer.state", errno: ENOENT) }
        try freezerState.write("FROZEN")
        // v1 freezing is asynchronous (FREEZING, then FROZEN): wait until every task is in the refrigerator.
        for _ in 0..<2000 {
            if try freezerState.read().hasPrefix("FROZEN") { return }
            usleep(50)
        }
        throw SystemError("freeze (tasks did not stop)", path: freezerState.path, errno: EBUSY)
    }

    func thaw() throws(SystemError) {
        guard let freezerState else { throw SystemError("open", path: directory("freezer") + "/freezer.state", errno: ENOENT) }
        try freezerState.write("THAWED")
    }

    func processes() throws(SystemError) -> [pid_t] {
        var pids = Set<pid_t>()
        for mount in backend.mounts {
            let path = "\(mount)/\(backend.parent)/\(name)/cgroup.procs"
            guard FileIO.exists(path) else { continue }
            pids.formUnion(parsePids(try FileIO.read(path)))
        }
        return pids.sorted()
    }

    @discardableResult
    func killAll(timeoutMilliseconds: Int) throws(SystemError) -> Bool {
        // Freeze first so nothing can fork while we kill; SIGKILL is delivered on thaw.
        try? freeze()
        for pid in try processes() { kill(pid, SIGKILL) }
        try? thaw()
        let deadline = monotonicMilliseconds() + Int64(timeoutMilliseconds)
        while true {
            let left = try processes()
            if left.isEmpty { return true }
            if monotonicMilliseconds() > deadline { return false }
            for pid in left { kill(pid, SIGKILL) }
            usleep(500)
        }
    }

    func statistics() throws(SystemError) -> CgroupStatistics {
        let memory = directory("memory")
        let peak = try Self.readInteger(maxUsage, memory + "/memory.max_usage_in_bytes")
        let current = try FileIO.read(memory + "/memory.usage_in_bytes").asInt64()
        let cpu = try Self.readInteger(cpuUsage, directory("cpuacct") + "/cpuacct.usage")
        let oom = parseKeyValues(try FileIO.read(memory + "/memory.oom_control"))["oom_kill"] ?? 0
        return CgroupStatistics(peakMemoryBytes: peak, currentMemoryBytes: current, cpuTimeNanoseconds: cpu, oomKills: Int(oom))
    }

    func cpuTimeNanoseconds() throws(SystemError) -> Int64 {
        try Self.readInteger(cpuUsage, directory("cpuacct") + "/cpuacct.usage")
    }

    func peakMemoryBytes() throws(SystemError) -> Int64 {
        try Self.readInteger(maxUsage, directory("memory") + "/memory.max_usage_in_bytes")
    }

    func oomKillCount() throws(SystemError) -> Int {
        Int(parseKeyValues(try FileIO.read(directory("memory") + "/memory.oom_control"))["oom_kill"] ?? 0)
    }

    /// Reads through the kept-open file when there is one (the hot path), else opens the path.
    private static func readInteger(_ file: CgroupFile?, _ path: String) throws(SystemError) -> Int64 {
        if let file { return try file.readInteger() }
        return try FileIO.read(path).asInt64()
    }

    func resetPeakMemory() throws(SystemError) {
        // Writing 0 resets the v1 high-water mark to the current usage.
        guard let maxUsage else { return }
        try maxUsage.write("0")
    }

    func limitCPU(_ cpus: Double) throws(SystemError) {
        try FileIO.write(directory("cpu") + "/cpu.cfs_quota_us", String(cpuQuotaMicroseconds(cpus: cpus)))
    }

    func cpuLimit() throws(SystemError) -> Double? {
        let quota = try FileIO.read(directory("cpu") + "/cpu.cfs_quota_us")
        let period = try FileIO.read(directory("cpu") + "/cpu.cfs_period_us")
        return cpuShare(quota: Substring(quota.trimmingCharacters(in: .whitespacesAndNewlines)),
                        period: Substring(period.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    func remove() throws(SystemError) {
        closeJoinDescriptors()
        for mount in backend.mounts {
            try removeCgroupDirectory("\(mount)/\(backend.parent)/\(name)")
        }
    }
}

extension String {
    func asInt64() throws(SystemError) -> Int64 {
        guard let value = Int64(trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw SystemError("parse integer `\(self)`", errno: EINVAL)
        }
        return value
    }
}

func monotonicMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
