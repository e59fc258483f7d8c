import Foundation
import LaminaStore
import Logging
import Synchronization

/// Runs queued `Event` invocations, at least once, as Lambda's asynchronous invocation does:
/// throttles and host errors go back to the queue with exponential backoff (1 s doubling to
/// 5 min) for up to six hours; function errors are retried twice, one then two minutes later;
/// events older than six hours are dropped. The queue is durable, so a crash of the daemon loses
/// nothing: a leased event whose lease expires is run again.
public final class AsyncInvocationWorker: Sendable {
    public struct Configuration: Sendable {
        public var concurrency = 4
        public var leaseSeconds: Double = 960
        public var maximumRetryAttempts = 2
        public var maximumEventAgeSeconds: Double = 21_600
        public var pollSeconds: Double = 1

        public init() {}
    }

    let queue: any AsyncQueueStore
    let resolver: FunctionResolver
    let invoker: Invoker
    let configuration: Configuration
    let logger: Logger
    private let wakeups: AsyncStream<Void>
    private let wakeupContinuation: AsyncStream<Void>.Continuation
    private let running = Mutex(0)

    public init(queue: any AsyncQueueStore, resolver: FunctionResolver, invoker: Invoker,
                configuration: Configuration = Configuration(), logger: Logger = Logger(label: "lamina.async")) {
        self.queue = queue
        self.resolver = resolver
        self.invoker = invoker
        self.configuration = configuration
        self.logger = logger
        (wakeups, wakeupContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Tells the worker an event was queued (so it does not wait for its next poll).
    public func wake() { wakeupContinuation.yield() }

    /// Runs until the task is cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Wake up at least every poll interval (retries become due with time).
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: UInt64(self.configuration.pollSeconds * 1e9))
                    self.wakeupContinuation.yield()
                }
            }
            for await _ in wakeups {
                if Task.isCancelled { break }
                let free = configuration.concurrency - running.withLock { $0 }
                guard free > 0 else { continue }
                let events: [QueuedEvent]
                do { events = try await queue.leaseEvents(limit: free, leaseSeconds: configuration.leaseSeconds, now: Date()) } catch {
                    logger.error("cannot read the async queue", metadata: ["error": "\(error)"])
                    continue
                }
                for event in events {
                    running.withLock { $0 += 1 }
                    group.addTask {
                        await self.process(event)
                        self.running.withLock { $0 -= 1 }
                        self.wakeupContinuation.yield()
                    }
                }
            }
            group.cancelAll()
        }
    }

    func process(_ event: QueuedEvent) async {
        let age = Date().timeIntervalSince(event.enqueuedAt)
        if age > configuration.maximumEventAgeSeconds {
            logger.warning("dropping an event past its maximum age", metadata: ["requestId": "\(event.requestId)"])
            try? await queue.complete(eventId: event.id)
            return
        }
        do {
            let target = try await resolver.resolve(accountId: event.accountId, region: event.region, name: event.functionName, qualifier: event.qualifier)
            var arn = target.definition.functionArn
            if let qualifier = event.qualifier { arn += ":\(qualifier)" }
            let result = try await invoker.invoke(target.definition, InvocationRequest(requestId: event.requestId, payload: event.payload,
                                                                                          invokedFunctionArn: arn, attempt: event.attempts + 1))
            if result.functionError != nil && event.attempts < configuration.maximumRetryAttempts {
                let delay = 60.0 * Double(event.attempts + 1)
                try? await queue.retry(eventId: event.id, notBefore: Date().addingTimeInterval(delay))
            } else {
                try? await queue.complete(eventId: event.id)
            }
        } catch let error as ResolveError {
            if case .notFound = error {
                // The function is gone: nothing will ever run this event.
                try? await queue.complete(eventId: event.id)
            } else {
                await backOff(event, error)
            }
        } catch {
            await backOff(event, error)
        }
    }

    /// Throttles and host errors: back to the queue, 1 s doubling up to 5 minutes.
    private func backOff(_ event: QueuedEvent, _ error: any Error) async {
        let delay = min(300, pow(2, Double(min(event.attempts, 9))))
        logger.debug("async invocation postponed", metadata: ["requestId": "\(event.requestId)", "error": "\(error)", "delay": "\(delay)"])
        try? await queue.retry(eventId: event.id, notBefore: Date().addingTimeInterval(delay))
    }
}
