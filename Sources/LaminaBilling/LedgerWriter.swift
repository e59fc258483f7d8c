import Foundation
import LaminaStore
import Synchronization

/// The ledger as a meter sink: `record` returns once the record is committed, and every record
/// that arrives while a transaction is being written goes into the next one (group commit), so a
/// burst costs a few transactions, not one per invocation.
public final class LedgerWriter: MeterSink, Sendable {
    let store: any LedgerStore
    private struct Pending {
        var records: [(MeterRecord, CheckedContinuation<Void, any Error>)] = []
        var writing = false
    }
    private let pending = Mutex(Pending())
    private let statistics = Mutex((commits: 0, records: 0))
    /// At most this many records per transaction.
    public let maxBatch: Int

    public init(store: any LedgerStore, maxBatch: Int = 2048) {
        self.store = store
        self.maxBatch = maxBatch
    }

    public func record(_ record: MeterRecord) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let startWriting = pending.withLock { state -> Bool in
                state.records.append((record, continuation))
                if state.writing { return false }
                state.writing = true
                return true
            }
            // The caller that finds no writer becomes it, and drains until nothing is pending.
            if startWriting { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = pending.withLock { state -> [(MeterRecord, CheckedContinuation<Void, any Error>)] in
                let batch = Array(state.records.prefix(maxBatch))
                state.records.removeFirst(batch.count)
                if batch.isEmpty { state.writing = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                try await store.appendLedger(batch.map { Self.row($0.0) })
                statistics.withLock { $0 = ($0.commits + 1, $0.records + batch.count) }
                for (_, continuation) in batch { continuation.resume() }
            } catch {
                for (_, continuation) in batch { continuation.resume(throwing: error) }
            }
        }
    }

    /// Transactions and records written so far (for the benchmark).
    public var commitStatistics: (commits: Int, records: Int) { statistics.withLock { $0 } }

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
