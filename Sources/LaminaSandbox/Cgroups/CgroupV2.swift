#if canImport(Glibc)
import Glibc
#endif

/// cgroup v2: one directory in the unified hierarchy. Freezing (`cgroup.freeze`), killing
/// (`cgroup.kill`) and CPU time (`cpu.stat`) are core features; memory, cpu and pids limits need
/// their controllers enabled in every ancestor's `cgroup.subtree_control`. Controllers the host does
/// not offer are skipped, which is how the tests exercise this backend on a hybrid host whose
/// unified hierarchy has none; production hosts are required to offer memory, cpu and pids
/// (`CgroupLayout.choose`).
public struct CgroupV2Backend: CgroupBackend {
    public let version = 2
    public let mount: String
    public let parent: String
    /// Controllers available at the hierarchy's root.
    public let controllers: Set<String>

    public init(mount: String, parent: String, controllers: Set<String>) {
        self.mount = mount
        self.parent = parent
        self.controllers = controllers
    }

    var wanted: [String] { ["memory", "cpu", "pids"].filter { controllers.contains($0) } }

    public func prepare() throws(SystemError) {
        // Enable the controllers from the root down to the parent; the parent holds no processes,
        // so v2's "no internal processes" rule is kept.
        var path = mount
        try enableControllers(at: path)
        for component in parent.split(separator: "/") {
            path += "/" + component
            if mkdir(path, 0o755) != 0 && errno != EEXIST { throw SystemError("mkdir", path: path) }
            try enableControllers(at: path)
        }
    }

    private func enableControllers(at path: String) throws(SystemError) {
        guard !wanted.isEmpty else { return }
        let current = Set((try FileIO.read(path + "/cgroup.subtree_control")).split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        let missing = wanted.filter { !current.contains($0) }
        guard !missing.isEmpty else { return }
        try FileIO.write(path + "/cgroup.subtree_control", missing.map { "+" + $0 }.joined(separator: " "))
    }

    func directory(_ name: String) -> String { "\(mount)/\(parent)/\(name)" }

    public func create(name: String, limits: ResourceLimits) throws(SystemError) -> any SandboxCgroup {
        let path = directory(name)
        guard mkdir(path, 0o755) == 0 else { throw SystemError("mkdir", path: path) }
        do {
            if controllers.contains("memory") {
                try FileIO.write(path + "/memory.max", String(limits.memoryBytes))
                if FileIO.exists(path + "/memory.swap.max") { try FileIO.write(path + "/memory.swap.max", "0") }
                // An OOM kills the whole sandbox, not one random process in it.
                try FileIO.write(path + "/memory.oom.group", "1")
            }
            if controllers.contains("cpu") {
                try FileIO.write(path + "/cpu.max", "\(cpuQuotaMicroseconds(cpus: limits.initialCPUs)) \(cfsPeriodMicroseconds)")
            }
            if controllers.contains("pids") {
                try FileIO.write(path + "/pids.max", String(limits.pids))
            }
            return try CgroupV2(path: path, name: name, hasMemory: controllers.contains("memory"))
        } catch {
            rmdir(path)
            throw error
        }
    }

    public func existing(name: String) -> (any SandboxCgroup)? {
        let path = directory(name)
        guard FileIO.isDirectory(path) else { return nil }
        return try? CgroupV2(path: path, name: name, hasMemory: controllers.contains("memory"), openJoin: false)
    }

    public func children() throws(SystemError) -> [String] {
        try FileIO.list("\(mount)/\(parent)").filter { FileIO.isDirectory("\(mount)/\(parent)/\($0)") }.sorted()
    }

    public func removeParentIfEmpty() {
        var components = parent.split(separator: "/").map(String.init)
        while !components.isEmpty {
            guard rmdir(mount + "/" + components.joined(separator: "/")) == 0 else { return }
            components.removeLast()
        }
    }
}

final class CgroupV2: SandboxCgroup, @unchecked Sendable {
    let name: String
    let path: String
    private(set) var joinDescriptors: [Int32] = []
    private let freezeFile: CgroupFile
    private let cpuStat: CgroupFile
    private let peakFile: CgroupFile?
    private let hasMemory: Bool

    init(path: String, name: String, hasMemory: Bool, openJoin: Bool = true) throws(SystemError) {
        self.path = path
        self.name = name
        self.hasMemory = hasMemory
        freezeFile = try CgroupFile(path + "/cgroup.freeze", writable: true)
        cpuStat = try CgroupFile(path + "/cpu.stat", writable: false)
        // memory.peak (5.19+) resets per open file description (6.12+), so the sandbox keeps its own.
        peakFile = hasMemory ? try? CgroupFile(path + "/memory.peak", writable: true) : nil
        if openJoin {
            let procs = path + "/cgroup.procs"
            let fd = retryingEINTR { open(procs, O_WRONLY | O_CLOEXEC) }
            guard fd >= 0 else { throw SystemError("open", path: procs) }
            joinDescriptors = [fd]
        }
    }

    deinit { closeJoinDescriptors() }

    func closeJoinDescriptors() {
        for fd in joinDescriptors { close(fd) }
        joinDescriptors = []
    }

    func freeze() throws(SystemError) {
        try freezeFile.write("1")
        for _ in 0..<2000 {
            if parseKeyValues(try FileIO.read(path + "/cgroup.events"))["frozen"] == 1 { return }
            usleep(50)
        }
        throw SystemError("freeze (tasks did not stop)", path: path + "/cgroup.freeze", errno: EBUSY)
    }

    func thaw() throws(SystemError) { try freezeFile.write("0") }

    func processes() throws(SystemError) -> [pid_t] {
        parsePids(try FileIO.read(path + "/cgroup.procs"))
    }

    @discardableResult
    func killAll(timeoutMilliseconds: Int) throws(SystemError) -> Bool {
        if FileIO.exists(path + "/cgroup.kill") {
            try FileIO.write(path + "/cgroup.kill", "1")
        } else {
            try? freeze()
            for pid in try processes() { kill(pid, SIGKILL) }
            try? thaw()
        }
        let deadline = monotonicMilliseconds() + Int64(timeoutMilliseconds)
        while true {
            if parseKeyValues(try FileIO.read(path + "/cgroup.events"))["populated"] == 0 { return true }
            if monotonicMilliseconds() > deadline { return false }
            for pid in try processes() { kill(pid, SIGKILL) }
            usleep(500)
        }
    }

    func statistics() throws(SystemError) -> CgroupStatistics {
        let cpu = parseKeyValues(try cpuStat.read())["usage_usec"] ?? 0
        guard hasMemory else {
            return CgroupStatistics(peakMemoryBytes: 0, currentMemoryBytes: 0, cpuTimeNanoseconds: cpu * 1000, oomKills: 0)
        }
        let current = try FileIO.read(path + "/memory.current").asInt64()
        let peak = try peakFile?.readInteger() ?? current
        let oom = parseKeyValues(try FileIO.read(path + "/memory.events"))["oom_kill"] ?? 0
        return CgroupStatistics(peakMemoryBytes: peak, currentMemoryBytes: current, cpuTimeNanoseconds: cpu * 1000, oomKills: Int(oom))
    }

    func cpuTimeNanoseconds() throws(SystemError) -> Int64 {
        (parseKeyValues(try cpuStat.read())["usage_usec"] ?? 0) * 1000
    }

    func peakMemoryBytes() throws(SystemError) -> Int64 {
        guard hasMemory else { return 0 }
        if let peakFile { return try peakFile.readInteger() }
        return try FileIO.read(path + "/memory.current").asInt64()
    }

    func oomKillCount() throws(SystemError) -> Int {
        guard hasMemory else { return 0 }
        return Int(parseKeyValues(try FileIO.read(path + "/memory.events"))["oom_kill"] ?? 0)
    }

    func resetPeakMemory() throws(SystemError) {
        // Kernels before 6.12 refuse the write; the peak then counts from the cgroup's creation.
        try? peakFile?.write("reset")
    }

    func limitCPU(_ cpus: Double) throws(SystemError) {
        // Without the cpu controller (a hierarchy that does not delegate it) there is no cpu.max.
        guard FileIO.exists(path + "/cpu.max") else { return }
        try FileIO.write(path + "/cpu.max", "\(cpuQuotaMicroseconds(cpus: cpus)) \(cfsPeriodMicroseconds)")
    }

    func cpuLimit() throws(SystemError) -> Double? {
        guard FileIO.exists(path + "/cpu.max") else { return nil }
        // "max 100000" or "7236 100000"
        let fields = try FileIO.read(path + "/cpu.max").split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 2 else { return nil }
        return cpuShare(quota: fields[0], period: fields[1])
    }

    func remove() throws(SystemError) {
        closeJoinDescriptors()
        try removeCgroupDirectory(path)
    }
}
