import NIOCore
import NIOHTTP1

/// A parked or incoming HTTP exchange the session answers.
protocol RuntimeResponder: AnyObject {
    var isActive: Bool { get }
    func respond(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer?)
}

/// One execution environment's side of the Runtime API: its phase and the invocation in flight.
///
/// Everything here runs on `eventLoop` (the loop that serves the environment's socket), so the
/// state needs no lock; the host's calls hop onto the loop. Each invocation gets exactly one
/// outcome, whichever comes first: the runtime's response or error, the deadline, or the
/// runtime's death.
public final class RuntimeSession: @unchecked Sendable {
    /// Lambda accepts a 6 MiB response plus 100 bytes of slack (RIE `MaxPayloadSize`).
    public static let maxResponseBytes = 6 * 1024 * 1024 + 100
    /// Error documents posted to /error and /init/error are capped like responses.
    public static let maxErrorBytes = 6 * 1024 * 1024 + 100

    public let eventLoop: EventLoop
    /// Called on the event loop when the runtime waits at `/next` with nothing to do: the host may
    /// freeze the environment now.
    public var onIdle: (@Sendable () -> Void)?

    enum Phase {
        case initializing
        case idle
        case invoking
        case dead
    }

    private struct Current {
        var invocation: RuntimeInvocation
        var promise: EventLoopPromise<InvocationOutcome>
        var deliveredAt: UInt64?
        var deadlineTask: Scheduled<Void>?
    }

    private var phase: Phase = .initializing
    private var current: Current?
    private var parked: RuntimeResponder?
    private var initPromise: EventLoopPromise<InitOutcome>
    private var initCompleted = false
    private var initTimeout: Scheduled<Void>?
    private var initError: (type: String, body: ByteBuffer)?
    /// Recently answered request ids, to tell "already answered" (403) from "unknown" (400).
    private var answered: [String] = []

    public init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
        self.initPromise = eventLoop.makePromise(of: InitOutcome.self)
    }

    // MARK: Host side

    /// Completes when the runtime first reaches `/next`, posts an init error and dies, dies, or
    /// `timeout` passes.
    public func initialization(timeout: TimeAmount) -> EventLoopFuture<InitOutcome> {
        eventLoop.execute {
            guard self.phase == .initializing, self.initTimeout == nil else { return }
            self.initTimeout = self.eventLoop.scheduleTask(in: timeout) {
                guard self.phase == .initializing else { return }
                self.phase = .dead
                self.completeInit(.timedOut(at: uptimeNanoseconds()))
            }
        }
        return initPromise.futureResult
    }

    /// Hands an event to the runtime (now if it waits at `/next`, else when it gets there) and
    /// completes with the invocation's outcome.
    public func invoke(_ invocation: RuntimeInvocation) -> EventLoopFuture<InvocationOutcome> {
        let promise = eventLoop.makePromise(of: InvocationOutcome.self)
        eventLoop.execute { self.start(invocation, promise: promise) }
        return promise.futureResult
    }

    /// The runtime process ended (or the host is shutting the environment down).
    public func abort(_ reason: RuntimeAbort) {
        eventLoop.execute { self.handleAbort(reason) }
    }

    // MARK: Phase changes (on the loop)

    private func start(_ invocation: RuntimeInvocation, promise: EventLoopPromise<InvocationOutcome>) {
        guard phase == .idle, current == nil else {
            promise.succeed(.aborted(.shutdown, deliveredAt: nil, at: uptimeNanoseconds()))
            return
        }
        phase = .invoking
        current = Current(invocation: invocation, promise: promise, deliveredAt: nil, deadlineTask: nil)
        if let parked, parked.isActive {
            self.parked = nil
            deliver(to: parked)
        }
    }

    private func deliver(to responder: RuntimeResponder) {
        guard var current else { return }
        var headers = HTTPHeaders()
        headers.reserveCapacity(8)
        headers.add(name: "Lambda-Runtime-Aws-Request-Id", value: current.invocation.requestId)
        let timeout = current.invocation.timeoutNs
        headers.add(name: "Lambda-Runtime-Deadline-Ms", value: String(epochMillisecondsNow() + Int64(timeout / 1_000_000)))
        headers.add(name: "Lambda-Runtime-Invoked-Function-Arn", value: current.invocation.invokedFunctionArn)
        headers.add(name: "Lambda-Runtime-Trace-Id", value: current.invocation.traceId)
        if let context = current.invocation.clientContext { headers.add(name: "Lambda-Runtime-Client-Context", value: context) }
        if let identity = current.invocation.cognitoIdentity { headers.add(name: "Lambda-Runtime-Cognito-Identity", value: identity) }
        if let tenant = current.invocation.tenantId { headers.add(name: "Lambda-Runtime-Aws-Tenant-Id", value: tenant) }
        headers.add(name: "Content-Type", value: "application/json")
        current.deliveredAt = uptimeNanoseconds()
        let requestId = current.invocation.requestId
        current.deadlineTask = eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout))) { self.expire(requestId: requestId) }
        self.current = current
        responder.respond(status: .ok, headers: headers, body: current.invocation.payload)
    }

    private func finish(_ outcome: InvocationOutcome) {
        guard let current else { return }
        current.deadlineTask?.cancel()
        self.current = nil
        remember(current.invocation.requestId)
        if phase == .invoking { phase = .idle }
        current.promise.succeed(outcome)
    }

    private func expire(requestId: String) {
        guard let current, current.invocation.requestId == requestId else { return }
        finish(.timedOut(deliveredAt: current.deliveredAt, at: uptimeNanoseconds()))
        // The host kills a timed-out environment; nothing more is served.
        phase = .dead
    }

    private func handleAbort(_ reason: RuntimeAbort) {
        let now = uptimeNanoseconds()
        switch phase {
        case .initializing:
            initTimeout?.cancel()
            if let initError {
                completeInit(.error(errorType: initError.type, body: initError.body, at: now))
            } else {
                completeInit(.aborted(reason, at: now))
            }
        case .invoking:
            finish(.aborted(reason, deliveredAt: current?.deliveredAt, at: now))
        case .idle, .dead:
            break
        }
        phase = .dead
        completeInit(.aborted(reason, at: now))
        parked = nil
    }

    /// The init outcome is decided once; later events (an exit after a timeout) change nothing.
    private func completeInit(_ outcome: InitOutcome) {
        guard !initCompleted else { return }
        initCompleted = true
        initPromise.succeed(outcome)
    }

    private func remember(_ requestId: String) {
        answered.append(requestId)
        if answered.count > 64 { answered.removeFirst(answered.count - 64) }
    }

    // MARK: Runtime side (called by the HTTP handler, on the loop)

    func next(_ responder: RuntimeResponder) {
        switch phase {
        case .dead:
            responder.respond(status: .internalServerError, headers: jsonHeaders,
                              body: errorBody("Runtime API is shutting down; the runtime should exit.", "Runtime.Shutdown"))
            return
        case .initializing:
            initTimeout?.cancel()
            phase = .idle
            completeInit(.ready(at: uptimeNanoseconds()))
        case .invoking:
            if current?.deliveredAt != nil {
                // The runtime asks for the next event without answering the one it holds.
                responder.respond(status: .forbidden, headers: jsonHeaders,
                                  body: errorBody("The current invocation \(current!.invocation.requestId) has not been answered; post its response or error first.", "InvalidStateTransition"))
                return
            }
        case .idle:
            break
        }
        if let parked, parked.isActive, parked !== responder {
            responder.respond(status: .forbidden, headers: jsonHeaders,
                              body: errorBody("Another GET /runtime/invocation/next is already waiting.", "InvalidStateTransition"))
            return
        }
        if phase == .invoking, current?.deliveredAt == nil {
            deliver(to: responder)
            return
        }
        parked = responder
        onIdle?()
    }

    func response(requestId: String, body: ByteBuffer, contentType: String?, tooLarge: Bool, _ responder: RuntimeResponder) {
        guard acceptAnswer(for: requestId, responder) else { return }
        let delivered = current?.deliveredAt ?? 0
        if tooLarge {
            responder.respond(status: .payloadTooLarge, headers: jsonHeaders,
                              body: errorBody("Exceeded maximum allowed payload size (\(Self.maxResponseBytes) bytes).", "RequestEntityTooLarge"))
            finish(.responseTooLarge(deliveredAt: delivered, completedAt: uptimeNanoseconds()))
            return
        }
        let now = uptimeNanoseconds()
        responder.respond(status: .accepted, headers: jsonHeaders, body: statusOK)
        finish(.response(body: body, contentType: contentType, deliveredAt: delivered, completedAt: now))
    }

    func error(requestId: String, body: ByteBuffer, errorType: String?, _ responder: RuntimeResponder) {
        guard acceptAnswer(for: requestId, responder) else { return }
        let delivered = current?.deliveredAt ?? 0
        let now = uptimeNanoseconds()
        responder.respond(status: .accepted, headers: jsonHeaders, body: statusOK)
        finish(.functionError(body: body, errorType: errorType, deliveredAt: delivered, completedAt: now))
    }

    func initError(errorType: String?, body: ByteBuffer, _ responder: RuntimeResponder) {
        guard phase == .initializing else {
            responder.respond(status: .forbidden, headers: jsonHeaders,
                              body: errorBody("Init errors can only be reported before the runtime first calls /next.", "InvalidStateTransition"))
            return
        }
        initError = (errorType ?? "Runtime.Unknown", body)
        responder.respond(status: .accepted, headers: jsonHeaders, body: statusOK)
    }

    /// Whether an answer (response or error) for `requestId` may be taken now; otherwise answers
    /// the runtime with the Runtime API's error and returns false.
    private func acceptAnswer(for requestId: String, _ responder: RuntimeResponder) -> Bool {
        if let current, current.invocation.requestId == requestId, current.deliveredAt != nil { return true }
        if answered.contains(requestId) || current?.invocation.requestId == requestId {
            responder.respond(status: .forbidden, headers: jsonHeaders,
                              body: errorBody("Invocation \(requestId) has already been answered (or is not in progress).", "InvalidStateTransition"))
        } else {
            responder.respond(status: .badRequest, headers: jsonHeaders, body: errorBody("Invalid request ID", "InvalidRequestID"))
        }
        return false
    }

    /// The runtime closed the connection a parked `/next` was on.
    func disconnected(_ responder: RuntimeResponder) {
        if parked === responder { parked = nil }
    }

    // MARK: Bodies

    private let allocator = ByteBufferAllocator()
    private lazy var jsonHeaders: HTTPHeaders = ["Content-Type": "application/json"]
    private lazy var statusOK: ByteBuffer = allocator.buffer(string: "{\"status\":\"OK\"}\n")

    /// The Runtime API's own error document: `{"errorMessage":"...","errorType":"..."}`.
    func errorBody(_ message: String, _ type: String) -> ByteBuffer {
        allocator.buffer(string: "{\"errorMessage\":\(jsonString(message)),\"errorType\":\(jsonString(type))}\n")
    }
}

/// A JSON string literal for `text`.
public func jsonString(_ text: String) -> String {
    var out = "\""
    out.reserveCapacity(text.utf8.count + 2)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
