#if canImport(Glibc)
import Glibc
#endif

/// What a sandbox cgroup measured.
public struct CgroupStatistics: Sendable, Equatable {
    /// Peak memory since creation or the last `resetPeakMemory()`.
    public var peakMemoryBytes: Int64
    public var currentMemoryBytes: Int64
    public var cpuTimeNanoseconds: Int64
    public var oomKills: Int

    public init(peakMemoryBytes: Int64, currentMemoryBytes: Int64, cpuTimeNanoseconds: Int64, oomKills: Int) {
        self.peakMemoryBytes = peakMemoryBytes
        self.currentMemoryBytes = currentMemoryBytes
        self.cpuTimeNanoseconds = cpuTimeNanoseconds
        self.oomKills = oomKills
    }
}

/// One sandbox's cgroup, whatever the cgroup version: create, limit, join, freeze, kill, measure, remove.
public protocol SandboxCgroup: AnyObject, Sendable {
    var name: String { get }
    /// cgroup.procs of every hierarchy, open for writing: the child writes "0" to each to join.
    var joinDescriptors: [Int32] { get }
    /// Closes `joinDescriptors` once the child has joined.
    func closeJoinDescriptors()
    func freeze() throws(SystemError)
    func thaw() throws(SystemError)
    /// Kills every process in the cgroup, including ones that double-forked or called setsid, and
    /// returns once the cgroup is empty or `timeoutMilliseconds` have passed.
    @discardableResult
    func killAll(timeoutMilliseconds: Int) throws(SystemError) -> Bool
    func processes() throws(SystemError) -> [pid_t]
    func statistics() throws(SystemError) -> CgroupStatistics
    /// The single counters, for the invocation path (kept-open files, no parsing of what is not needed).
    func cpuTimeNanoseconds() throws(SystemError) -> Int64
    func peakMemoryBytes() throws(SystemError) -> Int64
    func oomKillCount() throws(SystemError) -> Int
    func resetPeakMemory() throws(SystemError)
    /// Sets the CPU share (CFS quota per 100 ms period), e.g. down to the function's own after init.
    func limitCPU(_ cpus: Double) throws(SystemError)
    /// The CPU share in force; nil when unlimited or there is no cpu controller.
    func cpuLimit() throws(SystemError) -> Double?
    /// Removes the cgroup (it must be empty), retrying while the kernel still tears tasks down.
    func remove() throws(SystemError)
}

/// Creates and finds sandbox cgroups under Lamina's own subtree (`parent`).
public protocol CgroupBackend: Sendable {
    var version: Int { get }
    /// The subtree all sandbox cgroups live in, relative to each hierarchy's mount.
    var parent: String { get }
    /// Creates the parent subtree and enables the controllers sandboxes need.
    func prepare() throws(SystemError)
    func create(name: String, limits: ResourceLimits) throws(SystemError) -> any SandboxCgroup
    /// An existing cgroup by name (for the orphan collector), or nil if there is none.
    func existing(name: String) -> (any SandboxCgroup)?
    /// Names of the cgroups under the parent.
    func children() throws(SystemError) -> [String]
    /// Removes the parent subtree when nothing is left in it (best effort).
    func removeParentIfEmpty()
}

public enum CgroupBackends {
    /// The backend for this host, chosen by probing.
    public static func forHost(parent: String) throws(SandboxError) -> any CgroupBackend {
        let layout: CgroupLayout
        do { layout = try CgroupLayout.probe() } catch { throw .system(error) }
        switch try layout.choose() {
        case .v2(let mount):
            return CgroupV2Backend(mount: mount, parent: parent, controllers: layout.unifiedControllers)
        case .v1(let hierarchies):
            return CgroupV1Backend(hierarchies: hierarchies, parent: parent)
        }
    }
}

/// The CFS period sandboxes use: a quota is a share of every 100 ms.
let cfsPeriodMicroseconds = 100_000

/// CPU quota per period for a CPU share: `cpus` CPUs of runtime in every `period` microseconds.
/// Never below 1 ms per period: the kernel's minimum, and less starves even an idle runtime.
func cpuQuotaMicroseconds(cpus: Double, period: Int = cfsPeriodMicroseconds) -> Int {
    max(1000, Int((cpus * Double(period)).rounded()))
}

/// The CPU share of a CFS quota and period as cgroupfs prints them ("max" or -1: unlimited).
func cpuShare(quota: Substring, period: Substring) -> Double? {
    guard let quota = Double(quota), quota > 0, let period = Double(period), period > 0 else { return nil }
    return quota / period
}

/// Reads `key value` lines (cpu.stat, memory.events, memory.stat, memory.oom_control).
func parseKeyValues(_ text: String) -> [String: Int64] {
    var values: [String: Int64] = [:]
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: " ")
        if parts.count == 2, let value = Int64(parts[1]) { values[String(parts[0])] = value }
    }
    return values
}

/// Parses cgroup.procs: one pid per line.
func parsePids(_ text: String) -> [pid_t] {
    text.split(separator: "\n").compactMap { pid_t($0) }
}

/// rmdir with the retries a cgroup needs right after its last task died.
func removeCgroupDirectory(_ path: String) throws(SystemError) {
    var attempts = 0
    while rmdir(path) != 0 {
        if errno == ENOENT { return }
        guard errno == EBUSY, attempts < 2000 else { throw SystemError("rmdir", path: path) }
        attempts += 1
        usleep(100)
    }
}

/// A kernel file kept open, for interfaces read or written on the hot path.
final class CgroupFile: @unchecked Sendable {
    let path: String
    private let fd: Int32

    init(_ path: String, writable: Bool) throws(SystemError) {
        self.path = path
        let fd = retryingEINTR { open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC) }
        guard fd >= 0 else { throw SystemError("open", path: path) }
        self.fd = fd
    }

    deinit { close(fd) }

    func read() throws(SystemError) -> String { try FileIO.read(fd: fd, path: path, limit: 64 * 1024, offset: 0) }

    func readInteger() throws(SystemError) -> Int64 {
        let text = try read().trimmingCharacters(in: .whitespacesAndNewlines)
        guard let value = Int64(text) else { throw SystemError("parse integer from", path: path, errno: EINVAL) }
        return value
    }

    func write(_ text: String) throws(SystemError) {
        var text = text
        let n = text.withUTF8 { buffer in retryingEINTR { pwrite(fd, buffer.baseAddress, buffer.count, 0) } }
        if n < 0 { throw SystemError("write `\(text)` to", path: path) }
    }
}

extension String {
    func trimmingCharacters(in set: Set<Character>) -> String {
        var slice = self[...]
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}

extension Set where Element == Character {
    static let whitespacesAndNewlines: Set<Character> = [" ", "\n", "\t", "\r"]
}
