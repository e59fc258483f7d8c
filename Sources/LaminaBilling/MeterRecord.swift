import Synchronization

/// What one invocation cost, measured by the host to the millisecond: the unit the billing ledger
/// stores. One record per invocation that ran (successful or not); throttled requests make none.
public struct MeterRecord: Sendable, Equatable, Codable {
    public enum Outcome: String, Sendable, Codable, CaseIterable {
        case success
        /// The handler raised or returned an error (X-Amz-Function-Error: Unhandled).
        case functionError = "function_error"
        case timeout
        case outOfMemory = "out_of_memory"
        /// The runtime exited or crashed.
        case runtimeExit = "runtime_exit"
        /// Init failed (error, exit or timeout) before the handler ran.
        case initError = "init_error"
        case responseTooLarge = "response_too_large"
    }

    public var requestId: String
    /// 1, or the attempt number of a retried asynchronous event (every attempt is billed).
    public var attempt: Int
    public var accountId: String
    /// Unqualified function ARN.
    public var functionArn: String
    public var functionName: String
    /// `$LATEST` or a version number.
    public var executedVersion: String
    public var architecture: String
    /// Invocation start (the event handed to the runtime), Unix epoch milliseconds.
    public var startTimeMs: Int64
    /// Duration in microseconds (REPORT shows milliseconds with two decimals).
    public var durationMicros: Int64
    /// What is billed, whole milliseconds: ceil(duration [+ init when init is billed]).
    public var billedMs: Int64
    public var memoryMB: Int
    /// Init duration in microseconds on a cold start, else 0.
    public var initMicros: Int64
    public var initBilled: Bool
    public var maxMemoryUsedMB: Int
    public var cpuMicros: Int64
    public var outcome: Outcome
    /// Always 1: one request.
    public var requests: Int

    public init(requestId: String, attempt: Int = 1, accountId: String, functionArn: String, functionName: String, executedVersion: String,
                architecture: String, startTimeMs: Int64, durationMicros: Int64, billedMs: Int64, memoryMB: Int,
                initMicros: Int64, initBilled: Bool, maxMemoryUsedMB: Int, cpuMicros: Int64, outcome: Outcome, requests: Int = 1) {
        self.requestId = requestId
        self.attempt = attempt
        self.accountId = accountId
        self.functionArn = functionArn
        self.functionName = functionName
        self.executedVersion = executedVersion
        self.architecture = architecture
        self.startTimeMs = startTimeMs
        self.durationMicros = durationMicros
        self.billedMs = billedMs
        self.memoryMB = memoryMB
        self.initMicros = initMicros
        self.initBilled = initBilled
        self.maxMemoryUsedMB = maxMemoryUsedMB
        self.cpuMicros = cpuMicros
        self.outcome = outcome
        self.requests = requests
    }

    /// Lambda rounds the billed duration up to the next millisecond; since August 2025 a cold
    /// start's init is billed too (`initBilled`).
    public static func billedMilliseconds(durationMicros: Int64, initMicros: Int64, initBilled: Bool) -> Int64 {
        let micros = durationMicros + (initBilled ? initMicros : 0)
        return (micros + 999) / 1000
    }
}

/// Where the host hands meter records. The ledger implements it; `record` returns once the record
/// is durable, before the invocation's response leaves the daemon.
public protocol MeterSink: Sendable {
    func record(_ record: MeterRecord) async throws
}

/// Keeps records in memory (for `lamina run`, tests and benchmarks).
public final class InMemoryMeterSink: MeterSink {
    private let stored = Mutex<[MeterRecord]>([])

    public init() {}

    public func record(_ record: MeterRecord) async throws {
        stored.withLock { $0.append(record) }
    }

    public var records: [MeterRecord] { stored.withLock { $0 } }
}

/// Discards records (a host without billing).
public struct DiscardingMeterSink: MeterSink {
    public init() {}
    public func record(_ record: MeterRecord) async throws {}
}
