#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// An event handed to the runtime through `GET /runtime/invocation/next`.
public struct RuntimeInvocation: Sendable {
    public var requestId: String
    public var payload: ByteBuffer
    /// The function's timeout. It runs from the moment the event is handed to the runtime, which
    /// is when `Lambda-Runtime-Deadline-Ms` (Unix epoch milliseconds) is computed too.
    public var timeoutNs: UInt64
    public var invokedFunctionArn: String
    public var traceId: String
    /// JSON text (the Invoke API's base64 `X-Amz-Client-Context`, decoded).
    public var clientContext: String?
    public var cognitoIdentity: String?
    public var tenantId: String?

    public init(requestId: String, payload: ByteBuffer, timeoutNs: UInt64,
                invokedFunctionArn: String, traceId: String, clientContext: String? = nil,
                cognitoIdentity: String? = nil, tenantId: String? = nil) {
        self.requestId = requestId
        self.payload = payload
        self.timeoutNs = timeoutNs
        self.invokedFunctionArn = invokedFunctionArn
        self.traceId = traceId
        self.clientContext = clientContext
        self.cognitoIdentity = cognitoIdentity
        self.tenantId = tenantId
    }
}

/// Why an environment stopped serving (reported by the host, which watches the process).
public enum RuntimeAbort: Sendable, Equatable {
    /// The runtime process exited (code) or was killed (signal); `outOfMemory` when the cgroup's
    /// OOM killer did it.
    case exited(code: Int32?, signal: Int32?, outOfMemory: Bool)
    /// The host is destroying the environment.
    case shutdown
}

/// How one invocation ended. Times are CLOCK_MONOTONIC nanoseconds.
public enum InvocationOutcome: Sendable {
    /// `POST /response`.
    case response(body: ByteBuffer, contentType: String?, deliveredAt: UInt64, completedAt: UInt64)
    /// `POST /error`: the runtime's error document and the `Lambda-Runtime-Function-Error-Type` header.
    case functionError(body: ByteBuffer, errorType: String?, deliveredAt: UInt64, completedAt: UInt64)
    /// `POST /response` with a body over `RuntimeSession.maxResponseBytes`.
    case responseTooLarge(deliveredAt: UInt64, completedAt: UInt64)
    /// The deadline passed first.
    case timedOut(deliveredAt: UInt64?, at: UInt64)
    /// The runtime died (or the environment was shut down) first.
    case aborted(RuntimeAbort, deliveredAt: UInt64?, at: UInt64)

    public var deliveredAt: UInt64? {
        switch self {
        case .response(_, _, let delivered, _), .functionError(_, _, let delivered, _), .responseTooLarge(let delivered, _):
            return delivered
        case .timedOut(let delivered, _), .aborted(_, let delivered, _):
            return delivered
        }
    }

    public var completedAt: UInt64 {
        switch self {
        case .response(_, _, _, let at), .functionError(_, _, _, let at), .responseTooLarge(_, let at), .timedOut(_, let at), .aborted(_, _, let at):
            return at
        }
    }
}

/// How the initialization phase ended.
public enum InitOutcome: Sendable {
    /// The runtime reached `GET /next` (Init Duration ends here).
    case ready(at: UInt64)
    /// `POST /runtime/init/error` (usually followed by the runtime's exit).
    case error(errorType: String, body: ByteBuffer, at: UInt64)
    case aborted(RuntimeAbort, at: UInt64)
    case timedOut(at: UInt64)
}

/// CLOCK_REALTIME in Unix epoch milliseconds.
public func epochMillisecondsNow() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of every duration Lamina measures.
@inline(__always)
public func uptimeNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
