#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Dispatch
import Synchronization

/// How a sandbox's first process ended.
public struct TerminationStatus: Sendable, Equatable, CustomStringConvertible {
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
    private let exitQueue: DispatchQueue
    private let onRemoved: @Sendable (Sandbox) -> Void

    private struct State {
        var exit: TerminationStatus?
        var exitedAt: UInt64?
        var waiters: [CheckedContinuation<TerminationStatus, Never>] = []
        var listeningSocket: Int32?
        var removed = false
        /// Watches the pidfd for async waiters; created on the first `wait()` so that synchronous
        /// users (the CLI) never start Dispatch's machinery.
        var exitSource: (any DispatchSourceRead)?
    }
    private let state: Mutex<State>

    init(id: String, pid: pid_t, pidfd: Int32, cgroup: any SandboxCgroup,
         listeningSocket: Int32?, startedAt: UInt64, timings: SpawnTimings, queue: DispatchQueue, onRemoved: @escaping @Sendable (Sandbox) -> Void) {
        self.id = id
        self.pid = pid
        self.pidfd = pidfd
        self.cgroup = cgroup
        self.startedAt = startedAt
        self.timings = timings
        self.exitQueue = queue
        self.onRemoved = onRemoved
        self.state = Mutex(State(listeningSocket: listeningSocket))
    }

    deinit {
        let fd = pidfd
        state.withLock { state in
            if let socket = state.listeningSocket { close(socket) }
            // Dispatch may touch the descriptor until its cancel handler has run: close it there.
            if let source = state.exitSource {
                source.setCancelHandler { close(fd) }
                source.cancel()
            } else {
                close(fd)
            }
        }
    }

    /// Readable (poll/epoll) once the first process has exited; then call `reapIfExited()`.
    public var exitDescriptor: Int32 { pidfd }

    /// Collects the exit status if the first process has exited, without blocking.
    @discardableResult
    public func reapIfExited() -> TerminationStatus? {
        if let exit = exitStatus { return exit }
        var code: Int32 = 0
        var signal: Int32 = 0
        // Another thread may reap first; then its result is (or shortly will be) in `state`.
        guard lamina_pidfd_wait(pidfd, 1, &code, &signal) == 1 else { return exitStatus }
        let status = signal == 0 ? TerminationStatus(code: code) : TerminationStatus(signal: signal)
        let now = monotonicNanoseconds()
        let waiters = state.withLock { state in
            state.exit = status
            state.exitedAt = now
            state.exitSource?.cancel()
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: status) }
        return status
    }

    /// Blocks the calling thread until the first process exits or `timeoutMilliseconds` pass (-1: no limit).
    public func waitBlocking(timeoutMilliseconds: Int32 = -1) -> TerminationStatus? {
        if let exit = reapIfExited() { return exit }
        var descriptor = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        _ = retryingEINTR { poll(&descriptor, 1, timeoutMilliseconds) }
        return reapIfExited()
    }

    /// Waits until the first process exits. Other processes in the sandbox are not waited for:
    /// when pid 1 of a pid namespace exits, the kernel kills the rest.
    public func wait() async -> TerminationStatus {
        await withCheckedContinuation { continuation in
            let done: TerminationStatus? = state.withLock { state in
                if let exit = state.exit { return exit }
                state.waiters.append(continuation)
                if state.exitSource == nil {
                    // A pidfd becomes readable when the process exits; Dispatch watches it with
                    // epoll, so any number of running sandboxes cost no threads.
                    let source = DispatchSource.makeReadSource(fileDescriptor: pidfd, queue: exitQueue)
                    source.setEventHandler { [weak self] in self?.reapIfExited() }
                    state.exitSource = source
                    source.resume()
                }
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// The exit status once the first process has exited.
    public var exitStatus: TerminationStatus? { state.withLock { $0.exit } }
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

    /// Kills whatever still runs, waits for the first process, then removes the cgroup. Safe to call
    /// more than once.
    public func destroy() async throws(SystemError) {
        if exitStatus == nil { kill() }
        _ = await wait()
        try removeCgroup()
    }

    /// `destroy()` for callers without an async context: blocks until the sandbox is gone.
    public func destroyBlocking() throws(SystemError) {
        if reapIfExited() == nil { kill() }
        while waitBlocking(timeoutMilliseconds: 1000) == nil { kill() }
        try removeCgroup()
    }

    private func removeCgroup() throws(SystemError) {
        let first = state.withLock { state in
            defer { state.removed = true }
            return !state.removed
        }
        guard first else { return }
        // pid 1's exit makes the kernel kill the rest of the pid namespace; anything still listed is
        // on its way out, and is killed for certain.
        if (try? cgroup.processes().isEmpty) != true {
            _ = try? cgroup.killAll(timeoutMilliseconds: 2000)
        }
        try cgroup.remove()
        onRemoved(self)
    }
}
