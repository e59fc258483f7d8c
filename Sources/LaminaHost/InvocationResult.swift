import LaminaBilling

/// One invocation's measurements, as the REPORT line shows them.
public struct InvocationReport: Sendable, Equatable {
    public var requestId: String
    public var durationMicros: Int64
    public var billedMs: Int64
    public var memoryMB: Int
    public var maxMemoryUsedMB: Int
    /// Only on a cold start.
    public var initMicros: Int64?
    public var cpuMicros: Int64
    /// `timeout` or `error` for platform faults (timeout, OOM, runtime exit, init failure).
    public var status: String?
    public var errorType: String?
}

/// What an invocation returned to its caller.
public struct InvocationResult: Sendable {
    public var requestId: String
    public var payload: [UInt8]
    /// The runtime's Content-Type for a response (awslambdaric: application/json).
    public var contentType: String?
    /// `Unhandled` when the function failed (X-Amz-Function-Error).
    public var functionError: String?
    public var executedVersion: String
    /// The platform and runtime lines of this invocation, START to REPORT (for X-Amz-Log-Result).
    public var logLines: [String]
    public var report: InvocationReport
    public var meter: MeterRecord
    public var coldStart: Bool
    public var environmentId: String

    /// The last `limit` bytes of the invocation's log, as `X-Amz-Log-Type: Tail` returns them.
    public func logTail(limit: Int = 4096) -> [UInt8] {
        let text = Array(logLines.map { $0.hasSuffix("\n") ? $0 : $0 + "\n" }.joined().utf8)
        return Array(text.suffix(limit))
    }
}

/// Why an invocation could not run at all (nothing was metered).
public enum InvokeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Over a concurrency limit: Lambda's TooManyRequestsException with this Reason.
    case throttled(reason: String)
    /// The function cannot run as configured (e.g. a runtime layer is not built).
    case invalidConfiguration(String)
    /// The host failed (sandbox setup and the like).
    case serviceError(String)

    public var description: String {
        switch self {
        case .throttled(let reason): return "Rate Exceeded. (\(reason))"
        case .invalidConfiguration(let message), .serviceError(let message): return message
        }
    }
}
