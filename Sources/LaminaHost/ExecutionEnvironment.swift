#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import LaminaRuntime
import LaminaSandbox
import Synchronization

/// One execution environment: a sandbox running a runtime, its Runtime API session and its logs.
///
/// Freezing follows Lambda: the environment is frozen (cgroup freezer) whenever it is not
/// checked out for an invocation and its runtime waits at `/next`; it is thawed when checked out.
/// Both happen under one lock, so a freeze never lands on an environment that is in use.
public final class ExecutionEnvironment: Sendable {
    public enum State: String, Sendable {
        case initializing, idle, busy, dead
    }

    /// 32 hex characters, as in Lambda's log stream names.
    public let id: String
    public let configurationKey: String
    public let functionArn: String
    public let memoryMB: Int
    let sandbox: Sandbox
    let server: RuntimeAPIServer
    let logs: LogCollector
    let freezeEnabled: Bool
    let freezeQueue: DispatchQueue

    private struct Control {
        var state: State = .initializing
        var frozen = false
        /// The runtime waits at /next with nothing to do.
        var runtimeParked = false
        var lastUsedUptimeNs: UInt64 = 0
        var invocations = 0
    }
    private let control = Mutex(Control())

    var session: RuntimeSession { server.session }

    init(id: String, configurationKey: String, functionArn: String, memoryMB: Int, sandbox: Sandbox, server: RuntimeAPIServer,
         logs: LogCollector, freezeEnabled: Bool, freezeQueue: DispatchQueue) {
        self.id = id
        self.configurationKey = configurationKey
        self.functionArn = functionArn
        self.memoryMB = memoryMB
        self.sandbox = sandbox
        self.server = server
        self.logs = logs
        self.freezeEnabled = freezeEnabled
        self.freezeQueue = freezeQueue
        server.session.onIdle = { [weak self] in self?.runtimeReachedNext() }
    }

    public var state: State { control.withLock { $0.state } }
    public var isFrozen: Bool { control.withLock { $0.frozen } }
    public var invocationCount: Int { control.withLock { $0.invocations } }
    var lastUsed: UInt64 { control.withLock { $0.lastUsedUptimeNs } }
    /// CPU time used by everything in the environment so far.
    public func cpuTimeNanoseconds() throws -> Int64 { try sandbox.cgroup.cpuTimeNanoseconds() }
    /// The CPU share in force (more during init than after, see `InvokerConfiguration.initCPUs`).
    public func cpuLimit() throws -> Double? { try sandbox.cgroup.cpuLimit() }
    /// The runtime's pid, as the host sees it.
    public var pid: pid_t { sandbox.pid }

    /// Takes the environment for one invocation: thaws it if frozen. Returns false if it died meanwhile.
    func checkOut() -> Bool {
        control.withLock { control in
            guard control.state == .idle || control.state == .initializing else { return false }
            if control.frozen {
                do { try sandbox.thaw() } catch { return false }
                control.frozen = false
            }
            control.state = .busy
            control.runtimeParked = false
            control.invocations += 1
            return true
        }
    }

    /// Returns the environment after an invocation; it is frozen as soon as its runtime waits at /next.
    func checkIn() {
        let freeze = control.withLock { control -> Bool in
            guard control.state == .busy else { return false }
            control.state = .idle
            control.lastUsedUptimeNs = uptimeNanoseconds()
            return control.runtimeParked
        }
        if freeze { scheduleFreeze() }
    }

    /// Marks the environment ready after its initialization.
    func initialized() {
        control.withLock { control in
            if control.state == .initializing { control.state = .idle }
            control.lastUsedUptimeNs = uptimeNanoseconds()
        }
    }

    /// From now on the environment is unusable; returns whether this call made it so.
    @discardableResult
    func markDead() -> Bool {
        control.withLock { control in
            defer { control.state = .dead }
            return control.state != .dead
        }
    }

    var isDead: Bool { state == .dead }

    private func runtimeReachedNext() {
        let freeze = control.withLock { control -> Bool in
            control.runtimeParked = true
            return control.state == .idle
        }
        if freeze { scheduleFreeze() }
    }

    private func scheduleFreeze() {
        guard freezeEnabled else { return }
        freezeQueue.async { [weak self] in self?.freezeIfIdle() }
    }

    private func freezeIfIdle() {
        control.withLock { control in
            guard control.state == .idle, control.runtimeParked, !control.frozen else { return }
            do {
                try sandbox.freeze()
                control.frozen = true
            } catch {
                // A sandbox that cannot be frozen still works; it just keeps its CPU share.
            }
        }
    }

    /// Kills everything in the environment and releases it (sandbox, cgroup, Runtime API socket).
    func destroy() async {
        markDead()
        server.close()
        // A frozen sandbox must be thawed for SIGKILL to be delivered (the kill path thaws it too).
        sandbox.kill()
        do { try await sandbox.destroy() } catch {}
        logs.drain()
    }
}
