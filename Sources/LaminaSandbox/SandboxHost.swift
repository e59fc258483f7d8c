#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Logging
import Synchronization

public struct SandboxHostConfiguration: Sendable {
    /// Per-sandbox state (mount points) lives under `<stateDirectory>/sandboxes`.
    public var stateDirectory: String
    /// Lamina's own cgroup subtree, relative to each hierarchy's mount (e.g. "lamina").
    public var cgroupParent: String
    /// Overrides the probed backend (the tests use it to drive cgroup v2 on a hybrid host).
    public var cgroupBackend: (any CgroupBackend)?

    public init(stateDirectory: String, cgroupParent: String = "lamina", cgroupBackend: (any CgroupBackend)? = nil) {
        self.stateDirectory = stateDirectory
        self.cgroupParent = cgroupParent
        self.cgroupBackend = cgroupBackend
    }
}

/// Spawns sandboxes for one host process (the daemon, or one CLI command) and owns them.
///
/// Ownership is written into names so that a crashed host's leftovers can be recognised without any
/// bookkeeping file: every cgroup is `<owner>_<id>`, where `<owner>` is the host's pid and start time.
///
/// Every sandbox mounts its root on the same empty directory, `<stateDirectory>/sandboxes/mnt`: the
/// mounts happen in the sandbox's own mount namespace and leave it at pivot_root, so sandboxes never
/// see each other there, nothing is mounted in the host's namespace, and nothing per sandbox is left
/// on disk to clean up.
public final class SandboxHost: Sendable {
    public let configuration: SandboxHostConfiguration
    public let cgroups: any CgroupBackend
    public let owner: ProcessIdentity
    let logger: Logger
    let mountPoint: String
    private let seccompPrograms: Mutex<[SeccompProfile: SeccompProgram?]>
    private let live: Mutex<[String: Sandbox]>
    private let exitQueue = DispatchQueue(label: "lamina.sandbox.exits")

    public init(configuration: SandboxHostConfiguration, logger: Logger = Logger(label: "lamina.sandbox")) throws(SandboxError) {
        guard geteuid() == 0 else {
            throw .unsupportedHost("sandboxes need root: namespaces, cgroups and mounts are privileged (run as root)")
        }
        self.configuration = configuration
        self.logger = logger
        if let backend = configuration.cgroupBackend {
            self.cgroups = backend
        } else {
            self.cgroups = try CgroupBackends.forHost(parent: configuration.cgroupParent)
        }
        do { self.owner = try ProcessIdentity.current() } catch { throw .system(error) }
        self.mountPoint = "\(configuration.stateDirectory)/sandboxes/mnt"
        self.seccompPrograms = Mutex([:])
        self.live = Mutex([:])
        do {
            try cgroups.prepare()
            try FileIO.makeDirectories(mountPoint, mode: 0o700)
        } catch {
            throw .system(error)
        }
    }

    /// The compiled program for a profile, compiled on first use and cached for the host's life.
    func seccompProgram(_ profile: SeccompProfile) throws(SandboxError) -> SeccompProgram? {
        if let cached = seccompPrograms.withLock({ $0[profile] }) { return cached }
        let program = try SeccompCompiler.compile(profile, cacheDirectory: configuration.stateDirectory + "/seccomp")
        seccompPrograms.withLock { $0[profile] = program }
        return program
    }

    /// Compiles the seccomp profiles up front so the first spawn does not pay for it.
    public func warmUp() throws(SandboxError) {
        _ = try seccompProgram(.default)
    }

    /// Starts a sandbox. On failure nothing is left behind (cgroup, mount point) and the error says
    /// which setup step failed and why.
    public func spawn(_ spec: SandboxSpec) throws(SandboxError) -> Sandbox {
        try spec.validate()
        let program = try seccompProgram(spec.seccomp)
        let prepareStarted = monotonicNanoseconds()
        let id = Self.newIdentifier()
        let cgroup: any SandboxCgroup
        do {
            cgroup = try cgroups.create(name: "\(owner.tag)_\(id)", limits: spec.limits)
        } catch {
            throw .system(error)
        }
        let started = monotonicNanoseconds()
        let result: Spawner.Result
        do {
            result = try Spawner.spawn(spec: spec, rootMountPoint: mountPoint, cgroup: cgroup, seccomp: program)
        } catch {
            cgroup.closeJoinDescriptors()
            _ = try? cgroup.killAll(timeoutMilliseconds: 1000)
            try? cgroup.remove()
            throw error
        }
        cgroup.closeJoinDescriptors()
        var timings = result.timings
        timings.prepare = Double(started - prepareStarted) / 1_000_000
        let sandbox = Sandbox(
            id: id, pid: result.pid, pidfd: result.pidfd, cgroup: cgroup,
            listeningSocket: result.listeningSocket, startedAt: started, timings: timings, queue: exitQueue,
            onRemoved: { [weak self] sandbox in _ = self?.live.withLock { $0.removeValue(forKey: sandbox.id) } })
        live.withLock { $0[id] = sandbox }
        return sandbox
    }

    /// Sandboxes spawned by this host and not yet destroyed.
    public var liveSandboxes: [Sandbox] { live.withLock { Array($0.values) } }

    /// Destroys every live sandbox and removes the cgroup parent if nothing else uses it.
    public func shutdown() async {
        for sandbox in liveSandboxes {
            do { try await sandbox.destroy() } catch {
                logger.warning("could not remove sandbox", metadata: ["sandbox": "\(sandbox.id)", "error": "\(error)"])
            }
        }
        cgroups.removeParentIfEmpty()
    }

    /// `shutdown()` for callers without an async context.
    public func shutdownBlocking() {
        for sandbox in liveSandboxes {
            do { try sandbox.destroyBlocking() } catch {
                logger.warning("could not remove sandbox", metadata: ["sandbox": "\(sandbox.id)", "error": "\(error)"])
            }
        }
        cgroups.removeParentIfEmpty()
    }

    static func newIdentifier() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// A process named by pid and start time, so a recycled pid is never mistaken for its predecessor.
public struct ProcessIdentity: Sendable, Equatable, Hashable {
    public var pid: pid_t
    /// Field 22 of /proc/<pid>/stat (clock ticks after boot).
    public var startTime: UInt64

    public var tag: String { "\(pid)-\(startTime)" }

    public static func current() throws(SystemError) -> ProcessIdentity {
        let pid = getpid()
        guard let start = try startTime(of: pid) else { throw SystemError("read start time", path: "/proc/\(pid)/stat", errno: ESRCH) }
        return ProcessIdentity(pid: pid, startTime: start)
    }

    /// Parses `<pid>-<starttime>`.
    public init?(tag: some StringProtocol) {
        let parts = tag.split(separator: "-")
        guard parts.count == 2, let pid = pid_t(parts[0]), let start = UInt64(parts[1]) else { return nil }
        self.init(pid: pid, startTime: start)
    }

    public init(pid: pid_t, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// Whether this exact process still runs.
    public var isAlive: Bool {
        guard let start = try? Self.startTime(of: pid) else { return false }
        return start == startTime
    }

    static func startTime(of pid: pid_t) throws(SystemError) -> UInt64? {
        let text: String
        do { text = try FileIO.read("/proc/\(pid)/stat") } catch {
            if error.errno == ENOENT || error.errno == ESRCH { return nil }
            throw error
        }
        // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state), so field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }
}
