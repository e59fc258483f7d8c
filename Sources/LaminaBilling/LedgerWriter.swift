import Foundation
import LaminaStore

/// The ledger as a meter sink: `record` returns once the record is committed, and every record
/// that arrives while a transaction is being written goes into the next one (group commit), so a
/// burst costs a few transactions, not one per invocation.
///
/// Commits run on a thread the writer owns, with GRDB's blocking write: an invocation's record
/// then costs one wake-up of that thread and one resumption of the invocation, where an async
/// drain task cost several executor hops per transaction (measured by `lamina-bench ledger`).
public final class LedgerWriter: MeterSink, Sendable {
    let store: any LedgerStore
    private let queue: Queue
    /// At most this many records per transaction.
    public let maxBatch: Int
    let gatherTarget: Int

    typealias Waiter = (MeterRecord, CheckedContinuation<Void, any Error>)

    /// Records waiting for the next transaction, guarded by a condition the writer thread sleeps on.
    final class Queue: @unchecked Sendable {
        let condition = NSCondition()
        var waiting: [Waiter] = []
        var closed = false
        /// Transactions and records committed so far.
        var commits = 0
        var records = 0
    }

    /// - Parameters:
    ///   - gatherWindow: how long the first waiting record waits for company before its commit.
    ///   - gatherTarget: commit at once when this many records wait.
    public init(store: any LedgerStore, maxBatch: Int = 2048, gatherWindow: TimeInterval = 0.0005, gatherTarget: Int = 32) {
        self.store = store
        self.maxBatch = maxBatch
        self.gatherTarget = gatherTarget
        let queue = Queue()
        self.queue = queue
        let thread = Thread {
            Self.writeUntilClosed(queue, store: store, maxBatch: maxBatch, gatherWindow: gatherWindow, gatherTarget: gatherTarget)
        }
        thread.name = "lamina.ledger"
        thread.start()
    }

    /// Records written after this fail; records already waiting are still committed.
    deinit { close() }

    public func close() {
        queue.condition.lock()
        queue.closed = true
        queue.condition.signal()
        queue.condition.unlock()
    }

    public func record(_ record: MeterRecord) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            queue.condition.lock()
            guard !queue.closed else {
                queue.condition.unlock()
                return continuation.resume(throwing: LedgerWriterClosed())
            }
            queue.waiting.append((record, continuation))
            // Wake the writer only when it has something new to do: the first record ends its
            // sleep, the gather target ends its gathering. Waking it per record costs a context
            // switch per record.
            if queue.waiting.count == 1 || queue.waiting.count == gatherTarget { queue.condition.signal() }
            queue.condition.unlock()
        }
    }

    private static func writeUntilClosed(_ queue: Queue, store: any LedgerStore, maxBatch: Int, gatherWindow: TimeInterval, gatherTarget: Int) {
        var lastBatch = 0
        while true {
            queue.condition.lock()
            while queue.waiting.isEmpty && !queue.closed { queue.condition.wait() }
            // Under load, gather a little: at thousands of invocations a second each commit
            // otherwise carries a record or two, and wake-ups, not SQLite, dominate the cost. A
            // lone invocation (the last commit carried one record) is committed at once, as
            // PostgreSQL's commit_delay only waits when other transactions are active.
            if lastBatch > 1 || queue.waiting.count > 1 {
                let gatherUntil = Date(timeIntervalSinceNow: gatherWindow)
                while queue.waiting.count < gatherTarget && !queue.closed && queue.condition.wait(until: gatherUntil) {}
            }
            let batch = Array(queue.waiting.prefix(maxBatch))
            queue.waiting.removeFirst(batch.count)
            let finished = batch.isEmpty && queue.closed
            lastBatch = batch.count
            queue.condition.unlock()
            if finished { return }
            do {
                try store.appendLedgerBlocking(batch.map { row($0.0) })
                queue.condition.lock()
                queue.commits += 1
                queue.records += batch.count
                queue.condition.unlock()
                for (_, continuation) in batch { continuation.resume() }
            } catch {
                for (_, continuation) in batch { continuation.resume(throwing: error) }
            }
        }
    }

    /// Transactions and records written so far (for the benchmark).
    public var commitStatistics: (commits: Int, records: Int) {
        queue.condition.lock()
        defer { queue.condition.unlock() }
        return (queue.commits, queue.records)
    }

    /// The ledger row of a record.
    public static func testRow(_ record: MeterRecord) -> LedgerRow { row(record) }

    static func row(_ record: MeterRecord) -> LedgerRow {
        LedgerRow(requestId: record.requestId, attempt: record.attempt, accountId: record.accountId, functionArn: record.functionArn,
                  functionName: record.functionName, executedVersion: record.executedVersion, architecture: record.architecture,
                  startTimeMs: record.startTimeMs, durationMicros: record.durationMicros, billedMs: record.billedMs, memoryMB: record.memoryMB,
                  initMicros: record.initMicros, initBilled: record.initBilled, maxMemoryUsedMB: record.maxMemoryUsedMB,
                  cpuMicros: record.cpuMicros, outcome: record.outcome.rawValue, requests: record.requests)
    }
}

public struct LedgerWriterClosed: Error, CustomStringConvertible {
    public var description: String { "the billing ledger is closed (the daemon is stopping)" }
}
