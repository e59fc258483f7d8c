#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Dispatch
import Synchronization

/// How a sandbox's first process ended.
public struct ExitStatus: Sendable, Equatable, CustomStringConvertible {
    /// Exit code when the process exited normally.
    public var code: Int32?
    /// Signal number when it was killed.
    public var signal: Int32?

    public init(code: Int32? = nil, signal: Int32? = nil) {
        self.code = code
        self.signal = signal
    }

    /// The shell's convention: the exit code, or 128 + signal.
    public var shellStatus: Int32 { code ?? (128 + (signal ?? 0)) }

    public var description: String {
        if let code { return "exit status \(code)" }
        return "signal: \(signalName(signal ?? 0))"
    }
}

/// Lambda (and Go's os/exec, whose wording Lambda's messages use) names signals in lower case.
func signalName(_ signal: Int32) -> String {
    switch signal {
    case SIGKILL: return "killed"
    case SIGTERM: return "terminated"
    case SIGSEGV: return "segmentation fault"
    case SIGABRT: return "aborted"
    case SIGBUS: return "bus error"
    case SIGILL: return "illegal instruction"
    case SIGFPE: return "floating point exception"
    case SIGINT: return "interrupt"
    case SIGPIPE: return "broken pipe"
    default: return "signal \(signal)"
    }
}

/// One running sandbox: its first process (pid 1 inside) and its cgroup.
public final class Sandbox: Sendable {
    public let id: String
    /// The first process, in the host's pid namespace.
    public let pid: pid_t
    public let cgroup: any SandboxCgroup
    /// When the process was started (CLOCK_MONOTONIC, ns).
    public let startedAt: UInt64
    /// Where the start-up time went.
    public let timings: SpawnTimings

    private let pidfd: Int32
    private let rootMountPoint: String
    private let onRemoved: @Sendable (Sandbox) -> Void

    private struct State {
        var exit: ExitStatus?
        var exitedAt: UInt64?
        var waiters: [CheckedContinuation<ExitStatus, Never>] = []
        var listeningSocket: Int32?
        var removed = false
    }
    private let state: Mutex<State>
    /// Dispatch sources are thread-safe but not marked Sendable.
    private nonisolated(unsafe) let exitSource: any DispatchSourceRead

    init(id: String, pid: pid_t, pidfd: Int32, cgroup: any SandboxCgroup, rootMountPoint: String,
         listeningSocket: Int32?, startedAt: UInt64, timings: SpawnTimings, queue: DispatchQueue, onRemoved: @escaping @Sendable (Sandbox) -> Void) {
        self.id = id
        self.pid = pid
        self.pidfd = pidfd
        self.cgroup = cgroup
        self.rootMountPoint = rootMountPoint
        self.startedAt = startedAt
        self.timings = timings
        self.onRemoved = onRemoved
        self.state = Mutex(State(listeningSocket: listeningSocket))
        // A pidfd becomes readable when the process exits; Dispatch watches it with epoll, so any
        // number of sandboxes cost no threads while they run.
        exitSource = DispatchSource.makeReadSource(fileDescriptor: pidfd, queue: queue)
        exitSource.setEventHandler { [weak self] in self?.reap() }
        exitSource.setCancelHandler { close(pidfd) }
        exitSource.resume()
    }

    deinit {
        exitSource.cancel()
        state.withLock { state in
            if let fd = state.listeningSocket { close(fd) }
        }
    }

    private func reap() {
        var code: Int32 = 0
        var signal: Int32 = 0
        guard lamina_pidfd_wait(pidfd, 1, &code, &signal) == 1 else { return }
        let status = signal == 0 ? ExitStatus(code: code) : ExitStatus(signal: signal)
        let now = monotonicNanoseconds()
        exitSource.cancel()
        let waiters = state.withLock { state in
            state.exit = status
            state.exitedAt = now
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    /// Waits until the first process exits. Other processes in the sandbox are not waited for:
    /// when pid 1 of a pid namespace exits, the kernel kills the rest.
    public func wait() async -> ExitStatus {
        await withCheckedContinuation { continuation in
            let done: ExitStatus? = state.withLock { state in
                if let exit = state.exit { return exit }
                state.waiters.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// The exit status once the first process has exited.
    public var exitStatus: ExitStatus? { state.withLock { $0.exit } }
    /// When the first process exited (CLOCK_MONOTONIC, ns).
    public var exitedAt: UInt64? { state.withLock { $0.exitedAt } }

    /// The socket listening on 127.0.0.1:`listenPort` inside the sandbox; the caller owns it afterwards.
    public func takeListeningSocket() -> Int32? {
        state.withLock { state in
            defer { state.listeningSocket = nil }
            return state.listeningSocket
        }
    }

    /// Stops every process in the sandbox (cgroup freezer); they use no CPU until `thaw()`.
    public func freeze() throws(SystemError) { try cgroup.freeze() }
    public func thaw() throws(SystemError) { try cgroup.thaw() }
    public func statistics() throws(SystemError) -> CgroupStatistics { try cgroup.statistics() }
    /// Starts a new peak-memory measurement (one per invocation).
    public func resetPeakMemory() throws(SystemError) { try cgroup.resetPeakMemory() }

    /// Kills every process in the sandbox, including ones that double-forked or called setsid.
    public func kill() {
        _ = lamina_pidfd_send_signal(pidfd, SIGKILL)
        do { try cgroup.killAll(timeoutMilliseconds: 2000) } catch {}
    }

    /// Kills whatever still runs, waits for the first process, then removes the cgroup and the
    /// sandbox's state directory. Safe to call more than once.
    public func destroy() async throws(SystemError) {
        if exitStatus == nil || (try? cgroup.processes().isEmpty) == false { kill() }
        _ = await wait()
        let first = state.withLock { state in
            defer { state.removed = true }
            return !state.removed
        }
        guard first else { return }
        _ = try? cgroup.killAll(timeoutMilliseconds: 2000)
        try cgroup.remove()
        if rmdir(rootMountPoint) != 0 && errno != ENOENT { throw SystemError("rmdir", path: rootMountPoint) }
        onRemoved(self)
    }
}
