#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Dispatch
import LaminaBilling
import LaminaLayers
import LaminaRootfs
import LaminaRuntime
import LaminaSandbox
import Logging
import NIOCore
import NIOPosix
import Synchronization

public struct InvokerConfiguration: Sendable {
    /// Lambda limits the init phase to 10 s; a slower init is retried within the invocation.
    public var initTimeoutSeconds: Double = 10
    /// An environment unused this long is destroyed.
    public var idleTimeoutSeconds: Double = 600
    /// Freeze environments whose runtime waits at /next (Lambda's behaviour). Off only for experiments.
    public var freezeIdleEnvironments = true
    /// Memory all environments together may take, in MB; idle environments are evicted (least
    /// recently used first) to make room.
    public var capacityMB: Int = InvokerConfiguration.defaultCapacityMB
    /// Bill a cold start's init duration (AWS's rule since August 2025).
    public var initBilled = true
    /// Where the runtime finds the Runtime API inside its own network namespace.
    public var runtimeAPIPort: UInt16 = 9001
    /// CPUs a function's init may use when its memory entitles it to less; the handler then runs
    /// with its own share. Lambda's init is measurably faster than its handler below 3 GB (about
    /// two unthrottled vCPUs), which is why a 128 MB Python function there starts in ~100 ms, not
    /// the ~500 ms that 7% of a CPU would give. nil: init runs with the function's own share.
    public var initCPUs: Double? = 2

    public init() {}

    /// Three quarters of the host's memory.
    public static var defaultCapacityMB: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? Int(pages * size / 1_048_576) * 3 / 4 : 4096
    }
}

/// Runs invocations in execution environments, reusing warm ones, as Lambda does.
public final class Invoker: Sendable {
    public let configuration: InvokerConfiguration
    let sandboxes: SandboxHost
    let layers: LayerStore
    let rootfs: RootfsCatalog
    let logSink: any LogSink
    let meterSink: any MeterSink
    let logger: Logger
    let eventLoops: MultiThreadedEventLoopGroup
    let freezeQueue = DispatchQueue(label: "lamina.freezer", attributes: .concurrent)
    let logQueue = DispatchQueue(label: "lamina.logs")
    private let state = Mutex(HostState())
    private let reaper: Mutex<Task<Void, Never>?> = Mutex(nil)

    struct HostState {
        var idle: [String: [ExecutionEnvironment]] = [:]
        var environments: [String: ExecutionEnvironment] = [:]
        var inFlightByFunction: [String: Int] = [:]
        var inFlightByAccount: [String: Int] = [:]
        var unreservedInFlightByAccount: [String: Int] = [:]
        var committedMB = 0
        var shuttingDown = false
    }

    public init(configuration: InvokerConfiguration = InvokerConfiguration(), sandboxes: SandboxHost, layers: LayerStore,
                rootfs: RootfsCatalog, logSink: any LogSink, meterSink: any MeterSink,
                logger: Logger = Logger(label: "lamina.host")) {
        self.configuration = configuration
        self.sandboxes = sandboxes
        self.layers = layers
        self.rootfs = rootfs
        self.logSink = logSink
        self.meterSink = meterSink
        self.logger = logger
        self.eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: max(1, System.coreCount))
        startReaper()
    }

    // MARK: Invoking

    /// Runs one invocation: on a warm environment if one is idle, else on a new one (cold start).
    /// Throws only when nothing ran (throttled, misconfigured, host failure); every function fault
    /// (error, timeout, out of memory, crash) is a result with `functionError` set.
    public func invoke(_ function: FunctionDefinition, _ request: InvocationRequest) async throws(InvokeError) -> InvocationResult {
        var evicted: [ExecutionEnvironment] = []
        let warm = try state.withLock { state throws(InvokeError) in
            try admit(function, into: &state, evicted: &evicted)
        }
        for environment in evicted { Task { await environment.destroy() } }
        defer { release(function) }
        if let warm {
            return try await runWarm(warm, function, request)
        }
        return try await runCold(function, request)
    }

    /// Checks the concurrency limits, counts the invocation in flight, and takes an idle
    /// environment (nil: a cold start, whose memory is reserved here).
    private func admit(_ function: FunctionDefinition, into state: inout HostState,
                       evicted: inout [ExecutionEnvironment]) throws(InvokeError) -> ExecutionEnvironment? {
        guard !state.shuttingDown else { throw .serviceError("the host is shutting down") }
        let limits = function.concurrency
        let account = function.accountId
        if let reserved = limits.reserved {
            guard state.inFlightByFunction[function.functionArn, default: 0] < reserved else {
                throw .throttled(reason: "ReservedFunctionConcurrentInvocationLimitExceeded")
            }
        } else {
            guard state.unreservedInFlightByAccount[account, default: 0] < limits.unreserved else {
                throw .throttled(reason: "ConcurrentInvocationLimitExceeded")
            }
        }
        guard state.inFlightByAccount[account, default: 0] < limits.account else {
            throw .throttled(reason: "ConcurrentInvocationLimitExceeded")
        }
        state.inFlightByFunction[function.functionArn, default: 0] += 1
        state.inFlightByAccount[account, default: 0] += 1
        if limits.reserved == nil { state.unreservedInFlightByAccount[account, default: 0] += 1 }

        // The most recently used idle environment is the warmest.
        while let environment = state.idle[function.configurationKey]?.popLast() {
            if environment.checkOut() { return environment }
            // It died while idle: off the books, and destroyed by the caller.
            remove(environment, from: &state)
            evicted.append(environment)
        }
        // A cold start: make room by evicting idle environments, least recently used first.
        while state.committedMB + function.memoryMB > configuration.capacityMB {
            guard let victim = state.idle.values.flatMap({ $0 }).min(by: { $0.lastUsed < $1.lastUsed }) else { break }
            remove(victim, from: &state)
            evicted.append(victim)
        }
        guard state.committedMB + function.memoryMB <= configuration.capacityMB else {
            undoAdmission(function, &state)
            throw .throttled(reason: "ConcurrentInvocationLimitExceeded")
        }
        state.committedMB += function.memoryMB
        return nil
    }

    private func undoAdmission(_ function: FunctionDefinition, _ state: inout HostState) {
        state.inFlightByFunction[function.functionArn, default: 1] -= 1
        state.inFlightByAccount[function.accountId, default: 1] -= 1
        if function.concurrency.reserved == nil { state.unreservedInFlightByAccount[function.accountId, default: 1] -= 1 }
    }

    private func release(_ function: FunctionDefinition) {
        state.withLock { undoAdmission(function, &$0) }
    }

    /// Removes an environment from the books (pool, capacity); the caller destroys it.
    private func remove(_ environment: ExecutionEnvironment, from state: inout HostState) {
        guard state.environments.removeValue(forKey: environment.id) != nil else { return }
        state.committedMB -= environment.memoryMB
        if var idle = state.idle[environment.configurationKey] {
            idle.removeAll { $0 === environment }
            state.idle[environment.configurationKey] = idle.isEmpty ? nil : idle
        }
    }

    private func retire(_ environment: ExecutionEnvironment) {
        environment.markDead()
        state.withLock { remove(environment, from: &$0) }
        Task { await environment.destroy() }
    }

    private func returnToPool(_ environment: ExecutionEnvironment) {
        guard !environment.isDead else { return retire(environment) }
        // Idle first, then visible: an invocation that takes it from the pool must find it idle.
        environment.checkIn()
        let accepted = state.withLock { state -> Bool in
            guard !state.shuttingDown, state.environments[environment.id] != nil else { return false }
            state.idle[environment.configurationKey, default: []].append(environment)
            return true
        }
        if !accepted { retire(environment) }
    }

    private func runWarm(_ environment: ExecutionEnvironment, _ function: FunctionDefinition,
                         _ request: InvocationRequest) async throws(InvokeError) -> InvocationResult {
        // Max Memory Used is per invocation: start a new peak (a cold start keeps init's).
        try? environment.sandbox.resetPeakMemory()
        return try await execute(on: environment, function, request, cold: false, initMicros: nil)
    }

    private func runCold(_ function: FunctionDefinition, _ request: InvocationRequest) async throws(InvokeError) -> InvocationResult {
        let started = uptimeNanoseconds()
        let environment: ExecutionEnvironment
        do {
            environment = try await startEnvironment(function)
        } catch InvokeError.invalidConfiguration(let message) where message.hasPrefix("Couldn't find valid bootstrap") {
            state.withLock { $0.committedMB -= function.memoryMB }
            return try await failedBeforeStart(function, request, errorType: "Runtime.InvalidEntrypoint", message: message, started: started)
        } catch {
            state.withLock { $0.committedMB -= function.memoryMB }
            throw error
        }
        let outcome = await waitForInit(environment, timeout: configuration.initTimeoutSeconds)
        switch outcome {
        case .ready(let at):
            let initMicros = try takeAfterInit(environment, function, readyAt: at)
            return try await execute(on: environment, function, request, cold: true, initMicros: initMicros)
        case .timedOut(let at):
            // Lambda retries a slow init once, within the invocation and its timeout ("suppressed init").
            let initMicros = Int64(at - environment.sandbox.startedAt) / 1000
            environment.logs.platform(PlatformLog.initReport(initMicros: initMicros, phase: "init", status: "timeout", errorType: nil))
            retire(environment)
            return try await retryInitWithinInvocation(function, request)
        case .error, .aborted:
            return try await initFailed(environment, function, request, outcome: outcome, phase: "init")
        }
    }

    /// The second init attempt after an init timeout: the function's timeout covers init and invocation.
    private func retryInitWithinInvocation(_ function: FunctionDefinition, _ request: InvocationRequest) async throws(InvokeError) -> InvocationResult {
        let started = uptimeNanoseconds()
        let environment = try await startEnvironment(function)
        state.withLock { $0.committedMB += function.memoryMB }
        let outcome = await waitForInit(environment, timeout: function.timeoutSeconds)
        switch outcome {
        case .ready(let at):
            let initMicros = try takeAfterInit(environment, function, readyAt: at)
            var shortened = function
            shortened.timeoutSeconds = max(0.001, function.timeoutSeconds - Double(at - started) / 1e9)
            return try await execute(on: environment, shortened, request, cold: true, initMicros: initMicros)
        case .timedOut:
            return try await initFailed(environment, function, request, outcome: outcome, phase: "invoke")
        case .error, .aborted:
            return try await initFailed(environment, function, request, outcome: outcome, phase: "invoke")
        }
    }

    /// The runtime reached /next: the environment leaves init, drops to its own CPU share and is
    /// taken for its first invocation. Returns the Init Duration in µs.
    private func takeAfterInit(_ environment: ExecutionEnvironment, _ function: FunctionDefinition,
                               readyAt at: UInt64) throws(InvokeError) -> Int64 {
        environment.initialized()
        endInitCPUBoost(environment, function)
        guard environment.checkOut() else {
            retire(environment)
            throw .serviceError("the execution environment died right after its initialization")
        }
        return Int64(at - environment.sandbox.startedAt) / 1000
    }

    /// Init is over: the handler runs with the CPU share the function's memory pays for.
    private func endInitCPUBoost(_ environment: ExecutionEnvironment, _ function: FunctionDefinition) {
        let limits = ResourceLimits(memoryMB: function.memoryMB, startupCPUs: configuration.initCPUs)
        guard limits.initialCPUs > limits.effectiveCPUs else { return }
        do { try environment.sandbox.cgroup.limitCPU(limits.effectiveCPUs) } catch {
            logger.error("could not lower the CPU share after init", metadata: ["environment": "\(environment.id)", "error": "\(error)"])
        }
    }

    private func waitForInit(_ environment: ExecutionEnvironment, timeout seconds: Double) async -> InitOutcome {
        do {
            return try await environment.session.initialization(timeout: .nanoseconds(Int64(seconds * 1e9))).get()
        } catch {
            return .aborted(.shutdown, at: uptimeNanoseconds())
        }
    }

    // MARK: One invocation on a checked-out environment

    private func execute(on environment: ExecutionEnvironment, _ function: FunctionDefinition, _ request: InvocationRequest,
                         cold: Bool, initMicros: Int64?) async throws(InvokeError) -> InvocationResult {
        let requestId = request.requestId
        environment.logs.beginInvocation()
        environment.logs.platform(PlatformLog.start(requestId: requestId, version: function.version))
        let cpuBefore = (try? environment.sandbox.cgroup.cpuTimeNanoseconds()) ?? 0
        let startEpochMs = epochMilliseconds()
        let invocation = RuntimeInvocation(
            requestId: requestId, payload: ByteBuffer(bytes: request.payload), timeoutNs: UInt64(function.timeoutSeconds * 1e9),
            invokedFunctionArn: request.invokedFunctionArn, traceId: request.traceId ?? TraceHeader.make(),
            clientContext: request.clientContext, cognitoIdentity: request.cognitoIdentity, tenantId: request.tenantId)
        let outcome: InvocationOutcome
        do {
            outcome = try await environment.session.invoke(invocation).get()
        } catch {
            outcome = .aborted(.shutdown, deliveredAt: nil, at: uptimeNanoseconds())
        }
        // A timeout kills the environment, and every process in it, right away.
        if case .timedOut = outcome { environment.markDead(); environment.sandbox.kill() }
        var abortStatus: RuntimeAbort?
        if case .aborted(let reason, _, _) = outcome { abortStatus = await exitReason(of: environment, reason) }
        return try await conclude(environment, function, request, outcome: outcome, abort: abortStatus,
                                  cold: cold, initMicros: initMicros, cpuBefore: cpuBefore, startEpochMs: startEpochMs)
    }

    /// The runtime's exit as the sandbox saw it (with the OOM counter), when the session only knows
    /// that the environment is gone.
    private func exitReason(of environment: ExecutionEnvironment, _ reason: RuntimeAbort) async -> RuntimeAbort {
        if case .exited = reason { return reason }
        let status = await environment.sandbox.wait()
        let oom = ((try? environment.sandbox.cgroup.oomKillCount()) ?? 0) > 0
        return .exited(code: status.code, signal: status.signal, outOfMemory: oom)
    }

    private func conclude(_ environment: ExecutionEnvironment, _ function: FunctionDefinition, _ request: InvocationRequest,
                          outcome: InvocationOutcome, abort: RuntimeAbort?, cold: Bool, initMicros: Int64?,
                          cpuBefore: Int64, startEpochMs: Int64) async throws(InvokeError) -> InvocationResult {
        let requestId = request.requestId
        environment.logs.drain()
        let cpuAfter = (try? environment.sandbox.cgroup.cpuTimeNanoseconds()) ?? cpuBefore
        let peak = (try? environment.sandbox.cgroup.peakMemoryBytes()) ?? 0
        let delivered = outcome.deliveredAt ?? outcome.completedAt
        let durationMicros = Int64(outcome.completedAt > delivered ? outcome.completedAt - delivered : 0) / 1000

        var payload: [UInt8]
        var contentType: String?
        var functionError: String?
        var status: String?
        var errorType: String?
        var meterOutcome: MeterRecord.Outcome
        var healthy = true
        switch outcome {
        case .response(let body, let type, _, _):
            payload = Array(body.readableBytesView)
            contentType = type
            meterOutcome = .success
        case .functionError(let body, let type, _, _):
            payload = Array(body.readableBytesView)
            contentType = "application/json"
            functionError = "Unhandled"
            meterOutcome = .functionError
            _ = type
        case .responseTooLarge:
            payload = Array(ErrorDocument.json(message: "Response payload size exceeded maximum allowed payload size (\(RuntimeSession.maxResponseBytes) bytes).",
                                               type: "Function.ResponseSizeTooLarge").utf8)
            contentType = "application/json"
            functionError = "Unhandled"
            meterOutcome = .responseTooLarge
        case .timedOut:
            let seconds = Double(durationMicros) / 1_000_000
            environment.logs.platform(PlatformLog.timeout(requestId: requestId, seconds: seconds, at: epochMilliseconds()))
            payload = Array(ErrorDocument.json(message: "RequestId: \(requestId) Error: Task timed out after \(fixed(seconds, 2)) seconds",
                                               type: "Sandbox.Timedout").utf8)
            contentType = "application/json"
            functionError = "Unhandled"
            status = "timeout"
            meterOutcome = .timeout
            healthy = false
        case .aborted:
            let (type, message) = Self.exitError(abort ?? .shutdown)
            environment.logs.platform("RequestId: \(requestId) Error: \(message)")
            environment.logs.platform(type)
            payload = Array(ErrorDocument.json(message: "RequestId: \(requestId) Error: \(message)", type: type).utf8)
            contentType = "application/json"
            functionError = "Unhandled"
            status = "error"
            errorType = type
            meterOutcome = type == "Runtime.OutOfMemory" ? .outOfMemory : .runtimeExit
            healthy = false
        }

        let billed = MeterRecord.billedMilliseconds(durationMicros: durationMicros, initMicros: initMicros ?? 0,
                                                    initBilled: configuration.initBilled && cold)
        let report = InvocationReport(
            requestId: requestId, durationMicros: durationMicros, billedMs: billed, memoryMB: function.memoryMB,
            maxMemoryUsedMB: Int((peak + 1_048_575) / 1_048_576), initMicros: cold ? initMicros : nil,
            cpuMicros: max(0, cpuAfter - cpuBefore) / 1000, status: status, errorType: errorType)
        environment.logs.platform(PlatformLog.end(requestId: requestId))
        environment.logs.platform(PlatformLog.report(report))
        let lines = environment.logs.endInvocation()

        let meter = MeterRecord(
            requestId: requestId, attempt: request.attempt, accountId: function.accountId, functionArn: function.functionArn, functionName: function.name,
            executedVersion: function.version, architecture: function.architecture, startTimeMs: startEpochMs,
            durationMicros: durationMicros, billedMs: billed, memoryMB: function.memoryMB, initMicros: cold ? (initMicros ?? 0) : 0,
            initBilled: configuration.initBilled && cold, maxMemoryUsedMB: report.maxMemoryUsedMB, cpuMicros: report.cpuMicros,
            outcome: meterOutcome)

        if healthy { returnToPool(environment) } else { retire(environment) }
        do { try await meterSink.record(meter) } catch {
            logger.error("could not record the invocation in the ledger", metadata: ["requestId": "\(requestId)", "error": "\(error)"])
            throw .serviceError("the invocation ran but could not be recorded: \(error)")
        }
        return InvocationResult(
            requestId: requestId, payload: payload, contentType: contentType, functionError: functionError,
            executedVersion: function.version, logLines: lines, report: report, meter: meter, coldStart: cold,
            environmentId: environment.id)
    }

    /// Lambda's error type and message for a runtime that died (LAMBDA.md §5.2, §9).
    static func exitError(_ abort: RuntimeAbort) -> (type: String, message: String) {
        switch abort {
        case .exited(_, _, outOfMemory: true):
            return ("Runtime.OutOfMemory", "Runtime exited with error: signal: killed")
        case .exited(let code?, _, _) where code == 0:
            return ("Runtime.ExitError", "Runtime exited without providing a reason")
        case .exited(let code?, _, _):
            return ("Runtime.ExitError", "Runtime exited with error: exit status \(code)")
        case .exited(_, let signal?, _):
            return ("Runtime.ExitError", "Runtime exited with error: \(TerminationStatus(signal: signal).description)")
        case .exited, .shutdown:
            return ("Runtime.ExitError", "Runtime exited without providing a reason")
        }
    }

    /// Init failed: report it as Lambda does (INIT_REPORT, then the invocation with the init's error).
    private func initFailed(_ environment: ExecutionEnvironment, _ function: FunctionDefinition, _ request: InvocationRequest,
                            outcome: InitOutcome, phase: String) async throws(InvokeError) -> InvocationResult {
        let requestId = request.requestId
        let started = environment.sandbox.startedAt
        var payload: [UInt8]
        var errorType: String
        var status = "error"
        var at: UInt64
        switch outcome {
        case .error(let type, let body, let time):
            errorType = type
            payload = Array(body.readableBytesView)
            at = time
        case .aborted(let reason, let time):
            let (type, message) = Self.exitError(await exitReason(of: environment, reason))
            errorType = type
            payload = Array(ErrorDocument.json(message: "RequestId: \(requestId) Error: \(message)", type: type).utf8)
            at = time
        case .timedOut(let time):
            let seconds = Double(time - started) / 1e9
            errorType = "Sandbox.Timedout"
            status = "timeout"
            payload = Array(ErrorDocument.json(message: "RequestId: \(requestId) Error: Task timed out after \(fixed(seconds, 2)) seconds",
                                               type: "Sandbox.Timedout").utf8)
            at = time
        case .ready:
            throw .serviceError("init succeeded")
        }
        let peak = (try? environment.sandbox.cgroup.peakMemoryBytes()) ?? 0
        retire(environment)
        environment.logs.drain()
        let initMicros = Int64(at > started ? at - started : 0) / 1000
        environment.logs.platform(PlatformLog.initReport(initMicros: initMicros, phase: phase,
                                                         status: status, errorType: status == "timeout" ? nil : errorType))
        return try await reportFailedInvocation(function, request, logs: environment.logs, environmentId: environment.id,
                                                payload: payload, errorType: errorType, status: status,
                                                initMicros: initMicros, peak: peak)
    }

    /// An environment that could not even start (no bootstrap): Lambda's Runtime.InvalidEntrypoint.
    private func failedBeforeStart(_ function: FunctionDefinition, _ request: InvocationRequest, errorType: String,
                                   message: String, started: UInt64) async throws(InvokeError) -> InvocationResult {
        let logs = LogCollector(fd: -1, account: function.accountId, group: function.logGroup,
                                stream: PlatformLog.streamName(version: function.version, environmentId: Self.environmentId(), epochMs: epochMilliseconds()),
                                sink: logSink, queue: logQueue)
        let payload = Array(ErrorDocument.json(message: "RequestId: \(request.requestId) Error: \(message)", type: errorType).utf8)
        logs.platform("RequestId: \(request.requestId) Error: \(message)")
        logs.platform(errorType)
        let initMicros = Int64(uptimeNanoseconds() - started) / 1000
        logs.platform(PlatformLog.initReport(initMicros: initMicros, phase: "init", status: "error", errorType: errorType))
        return try await reportFailedInvocation(function, request, logs: logs, environmentId: "", payload: payload, errorType: errorType,
                                                status: "error", initMicros: initMicros, peak: 0)
    }

    private func reportFailedInvocation(_ function: FunctionDefinition, _ request: InvocationRequest, logs: LogCollector,
                                        environmentId: String, payload: [UInt8], errorType: String, status: String,
                                        initMicros: Int64, peak: Int64) async throws(InvokeError) -> InvocationResult {
        let requestId = request.requestId
        let startEpochMs = epochMilliseconds()
        logs.beginInvocation()
        logs.platform(PlatformLog.start(requestId: requestId, version: function.version))
        logs.platform(PlatformLog.end(requestId: requestId))
        let billed = MeterRecord.billedMilliseconds(durationMicros: 0, initMicros: initMicros, initBilled: configuration.initBilled)
        let report = InvocationReport(
            requestId: requestId, durationMicros: 0, billedMs: billed, memoryMB: function.memoryMB,
            maxMemoryUsedMB: Int((peak + 1_048_575) / 1_048_576), initMicros: initMicros, cpuMicros: 0,
            status: status, errorType: status == "timeout" ? nil : errorType)
        logs.platform(PlatformLog.report(report))
        let lines = logs.endInvocation()
        let meter = MeterRecord(
            requestId: requestId, attempt: request.attempt, accountId: function.accountId, functionArn: function.functionArn, functionName: function.name,
            executedVersion: function.version, architecture: function.architecture, startTimeMs: startEpochMs,
            durationMicros: 0, billedMs: billed, memoryMB: function.memoryMB, initMicros: initMicros,
            initBilled: configuration.initBilled, maxMemoryUsedMB: report.maxMemoryUsedMB, cpuMicros: 0,
            outcome: status == "timeout" ? .timeout : .initError)
        do { try await meterSink.record(meter) } catch {
            throw .serviceError("the invocation ran but could not be recorded: \(error)")
        }
        return InvocationResult(requestId: requestId, payload: payload, contentType: "application/json", functionError: "Unhandled",
                                executedVersion: function.version, logLines: lines, report: report, meter: meter, coldStart: true,
                                environmentId: environmentId)
    }

    // MARK: Environments

    static func environmentId() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// Starts a new environment for `function` (its memory is already reserved by the caller).
    private func startEnvironment(_ function: FunctionDefinition) async throws(InvokeError) -> ExecutionEnvironment {
        let plan: FunctionRootPlan
        do {
            let identity = try layers.identityLayer(uid: function.user.uid, gid: function.user.gid)
            plan = try FunctionRootPlan.make(runtime: function.runtime, handler: function.handler, code: function.code,
                                             layers: function.layers, identity: identity, rootfs: rootfs.path(of:))
        } catch {
            throw .invalidConfiguration(error.description)
        }
        let id = Self.environmentId()
        let stream = PlatformLog.streamName(version: function.version, environmentId: id, epochMs: epochMilliseconds())
        var pipe: [Int32] = [-1, -1]
        guard lamina_pipe_cloexec(&pipe) == 0 else { throw .serviceError("pipe: \(String(cString: strerror(errno)))") }
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(devNull) }
        let spec = SandboxSpec(
            command: plan.bootstrap,
            root: RootFilesystem(layers: plan.lowerLayers),
            environment: environment(for: function, plan: plan, logStream: stream),
            limits: ResourceLimits(memoryMB: function.memoryMB, startupCPUs: configuration.initCPUs, pids: 1024, tmpMB: function.ephemeralStorageMB),
            user: function.user,
            hostname: "localhost",
            workingDirectory: plan.workingDirectory,
            listenPort: configuration.runtimeAPIPort,
            stdio: .fds(stdin: devNull, stdout: pipe[1], stderr: pipe[1]))
        let sandbox: Sandbox
        do { sandbox = try sandboxes.spawn(spec) } catch {
            close(pipe[0])
            close(pipe[1])
            throw .serviceError("could not start the execution environment: \(error)")
        }
        close(pipe[1])
        let logs = LogCollector(fd: pipe[0], account: function.accountId, group: function.logGroup, stream: stream, sink: logSink, queue: logQueue)
        guard let socket = sandbox.takeListeningSocket() else {
            try? await sandbox.destroy()
            throw .serviceError("the sandbox did not hand over its Runtime API socket")
        }
        let server: RuntimeAPIServer
        do { server = try await RuntimeAPIServer.start(adopting: socket, on: eventLoops.next()).get() } catch {
            close(socket)
            try? await sandbox.destroy()
            throw .serviceError("could not serve the Runtime API: \(error)")
        }
        let environment = ExecutionEnvironment(
            id: id, configurationKey: function.configurationKey, functionArn: function.functionArn, memoryMB: function.memoryMB,
            sandbox: sandbox, server: server, logs: logs, freezeEnabled: configuration.freezeIdleEnvironments, freezeQueue: freezeQueue)
        state.withLock { $0.environments[id] = environment }
        if let version = function.runtime.executionEnvironment.map({ _ in function.runtime.name }),
           let layer = function.runtime.rootfsLayers.first.flatMap(rootfs.layer(named:)) {
            logs.platform(PlatformLog.initStart(runtimeVersion: Self.runtimeVersion(version), region: function.region, runtimeDigest: layer.digest))
        }
        watchExit(environment)
        return environment
    }

    /// `python3.11` -> `python:3.11.v1`, Lambda's runtime version label.
    static func runtimeVersion(_ runtime: String) -> String {
        guard let digit = runtime.firstIndex(where: \.isNumber) else { return "\(runtime).v1" }
        return "\(runtime[..<digit]):\(runtime[digit...]).v1"
    }

    /// When the runtime process ends, the session learns it (with the OOM verdict) and the
    /// environment leaves the pool.
    private func watchExit(_ environment: ExecutionEnvironment) {
        Task { [weak self] in
            let status = await environment.sandbox.wait()
            let oom = ((try? environment.sandbox.cgroup.oomKillCount()) ?? 0) > 0
            environment.session.abort(.exited(code: status.code, signal: status.signal, outOfMemory: oom))
            // A busy environment is retired by its invocation; an idle one is retired here.
            if environment.state == .idle || environment.state == .initializing {
                self?.retire(environment)
            } else {
                environment.markDead()
            }
        }
    }

    /// The runtime's environment: the plan's defaults, the function's own variables, then the
    /// reserved ones (LAMBDA.md §1.8), which a function cannot override.
    func environment(for function: FunctionDefinition, plan: FunctionRootPlan, logStream: String) -> [String: String] {
        var variables = plan.environment
        for (key, value) in function.environment where !Self.reservedVariables.contains(key) { variables[key] = value }
        variables.merge([
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": String(function.memoryMB),
            "AWS_LAMBDA_FUNCTION_VERSION": function.version,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": function.logGroup,
            "AWS_LAMBDA_LOG_STREAM_NAME": logStream,
            "AWS_REGION": function.region,
            "AWS_DEFAULT_REGION": function.region,
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:\(configuration.runtimeAPIPort)",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "_HANDLER": function.handler,
        ]) { _, reserved in reserved }
        return variables
    }

    /// Names a function's configuration may not set (Lambda rejects them; the host's win here).
    public static let reservedVariables: Set<String> = [
        "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
    ]

    // MARK: Idle reaping and shutdown

    private func startReaper() {
        let interval = min(1.0, max(0.05, configuration.idleTimeoutSeconds / 4))
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                self?.reapIdle()
            }
        }
        reaper.withLock { $0 = task }
    }

    /// Destroys environments idle for longer than the idle timeout.
    func reapIdle() {
        let limit = UInt64(configuration.idleTimeoutSeconds * 1e9)
        let now = uptimeNanoseconds()
        let expired = state.withLock { state -> [ExecutionEnvironment] in
            let old = state.idle.values.flatMap { $0 }.filter { now > $0.lastUsed && now - $0.lastUsed >= limit }
            for environment in old { remove(environment, from: &state) }
            return old
        }
        for environment in expired {
            logger.debug("reaping idle environment", metadata: ["environment": "\(environment.id)"])
            environment.markDead()
            Task { await environment.destroy() }
        }
    }

    /// Destroys every idle environment now (the next invocation of each function is a cold start).
    public func destroyIdleEnvironments() async {
        let idle = state.withLock { state -> [ExecutionEnvironment] in
            let idle = state.idle.values.flatMap { $0 }
            for environment in idle { remove(environment, from: &state) }
            return idle
        }
        for environment in idle { await environment.destroy() }
    }

    /// Environments by state (for metrics).
    public var environmentCounts: [ExecutionEnvironment.State: Int] {
        let all = state.withLock { Array($0.environments.values) }
        var counts: [ExecutionEnvironment.State: Int] = [:]
        for environment in all { counts[environment.state, default: 0] += 1 }
        return counts
    }

    public var environments: [ExecutionEnvironment] { state.withLock { Array($0.environments.values) } }

    /// Invocations in flight, all functions together.
    public var inFlight: Int { state.withLock { $0.inFlightByAccount.values.reduce(0, +) } }

    /// Stops taking invocations, waits up to `graceSeconds` for those in flight, then destroys every environment.
    public func shutdown(graceSeconds: Double = 0) async {
        state.withLock { $0.shuttingDown = true }
        reaper.withLock { $0?.cancel() }
        let deadline = uptimeNanoseconds() + UInt64(graceSeconds * 1e9)
        while inFlight > 0 && uptimeNanoseconds() < deadline {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        let all = state.withLock { state -> [ExecutionEnvironment] in
            let all = Array(state.environments.values)
            state.environments = [:]
            state.idle = [:]
            state.committedMB = 0
            return all
        }
        for environment in all { await environment.destroy() }
        try? await eventLoops.shutdownGracefully()
    }
}

/// An invocation as the caller asks for it.
public struct InvocationRequest: Sendable {
    public var requestId: String
    public var payload: [UInt8]
    /// The ARN as invoked (with the qualifier, if one was used).
    public var invokedFunctionArn: String
    public var clientContext: String?
    public var cognitoIdentity: String?
    public var traceId: String?
    public var tenantId: String?
    /// 1, or the attempt number of a retried asynchronous event.
    public var attempt: Int

    public init(requestId: String = RequestID.make(), payload: [UInt8], invokedFunctionArn: String, clientContext: String? = nil,
                cognitoIdentity: String? = nil, traceId: String? = nil, tenantId: String? = nil, attempt: Int = 1) {
        self.requestId = requestId
        self.payload = payload
        self.invokedFunctionArn = invokedFunctionArn
        self.clientContext = clientContext
        self.cognitoIdentity = cognitoIdentity
        self.traceId = traceId
        self.tenantId = tenantId
        self.attempt = attempt
    }
}

/// Lambda request ids are random (version 4) UUIDs in lower case.
public enum RequestID {
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let hex = bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        let h = Array(hex)
        return "\(String(h[0..<8]))-\(String(h[8..<12]))-\(String(h[12..<16]))-\(String(h[16..<20]))-\(String(h[20..<32]))"
    }
}

/// X-Ray trace headers as Lambda passes them to the runtime.
public enum TraceHeader {
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        func hex(_ count: Int) -> String {
            (0..<count).map { _ in String(Int.random(in: 0..<16, using: &generator), radix: 16) }.joined()
        }
        let seconds = String(epochMilliseconds() / 1000, radix: 16)
        return "Root=1-\(seconds)-\(hex(24));Parent=\(hex(16));Sampled=0"
    }
}

/// Lambda's error document: `{"errorMessage":"...","errorType":"..."}`.
enum ErrorDocument {
    static func json(message: String, type: String) -> String {
        "{\"errorMessage\":\(jsonString(message)),\"errorType\":\(jsonString(type))}"
    }
}
