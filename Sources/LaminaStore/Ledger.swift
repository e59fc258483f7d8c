import Foundation
import GRDB

/// One invocation in the ledger (LaminaBilling's meter record, flattened for storage).
public struct LedgerRow: Sendable, Equatable {
    public var requestId: String
    /// 1 for synchronous invocations; the attempt number of an asynchronous event (each is billed).
    public var attempt: Int
    public var accountId: String
    public var functionArn: String
    public var functionName: String
    public var executedVersion: String
    public var architecture: String
    public var startTimeMs: Int64
    public var durationMicros: Int64
    public var billedMs: Int64
    public var memoryMB: Int
    public var initMicros: Int64
    public var initBilled: Bool
    public var maxMemoryUsedMB: Int
    public var cpuMicros: Int64
    public var outcome: String
    public var requests: Int

    public init(requestId: String, attempt: Int, accountId: String, functionArn: String, functionName: String, executedVersion: String,
                architecture: String, startTimeMs: Int64, durationMicros: Int64, billedMs: Int64, memoryMB: Int, initMicros: Int64,
                initBilled: Bool, maxMemoryUsedMB: Int, cpuMicros: Int64, outcome: String, requests: Int) {
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
}

/// Usage of one function in one UTC hour: what exports and summaries are built from. Integer
/// sums only, so rolling raw rows up into these never changes a total.
public struct HourlyUsage: Sendable, Equatable {
    public var hourStartMs: Int64
    public var accountId: String
    public var functionArn: String
    public var functionName: String
    public var architecture: String
    public var requests: Int64
    public var billedMs: Int64
    /// Σ memoryMB × billedMs: GB-seconds = mbMs / 1024 / 1000.
    public var mbMs: Int64
    public var durationMicros: Int64
    public var initMicros: Int64
    public var cpuMicros: Int64

    public init(hourStartMs: Int64, accountId: String, functionArn: String, functionName: String, architecture: String, requests: Int64,
                billedMs: Int64, mbMs: Int64, durationMicros: Int64, initMicros: Int64, cpuMicros: Int64) {
        self.hourStartMs = hourStartMs
        self.accountId = accountId
        self.functionArn = functionArn
        self.functionName = functionName
        self.architecture = architecture
        self.requests = requests
        self.billedMs = billedMs
        self.mbMs = mbMs
        self.durationMicros = durationMicros
        self.initMicros = initMicros
        self.cpuMicros = cpuMicros
    }
}

/// The billing ledger's persistence.
public protocol LedgerStore: Sendable {
    /// Appends rows in one transaction (a group commit); durable when it returns.
    func appendLedger(_ rows: [LedgerRow]) async throws
    /// The same, blocking the calling thread: for a writer that owns a thread, so a commit costs
    /// no hops between executors.
    func appendLedgerBlocking(_ rows: [LedgerRow]) throws
    /// Raw rows that started in [from, to) (Unix ms), oldest first.
    func ledgerRows(fromMs: Int64, toMs: Int64, accountId: String?, functionName: String?) async throws -> [LedgerRow]
    /// Hourly usage in [from, to): raw rows summed by hour, plus what was already rolled up.
    func hourlyUsage(fromMs: Int64, toMs: Int64, accountId: String?, functionName: String?) async throws -> [HourlyUsage]
    /// Moves raw rows that started before `beforeMs` into hourly aggregates; returns how many moved.
    func rollUpLedger(beforeMs: Int64) async throws -> Int
    func ledgerRowCount() async throws -> Int
}

extension SQLiteStore: LedgerStore {
    public func appendLedger(_ rows: [LedgerRow]) async throws {
        guard !rows.isEmpty else { return }
        try await write { db in try Self.insert(rows, db) }
    }

    public func appendLedgerBlocking(_ rows: [LedgerRow]) throws {
        guard !rows.isEmpty else { return }
        do { try pool.write { db in try Self.insert(rows, db) } } catch let error as StoreError { throw error } catch {
            throw StoreError.database("\(error)")
        }
    }

    private static func insert(_ rows: [LedgerRow], _ db: Database) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO ledger (request_id, attempt, account_id, function_arn, function_name, executed_version, architecture,
                                start_time_ms, duration_us, billed_ms, memory_mb, init_us, init_billed, max_memory_used_mb, cpu_us,
                                outcome, requests)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for row in rows {
            try statement.execute(arguments: [row.requestId, row.attempt, row.accountId, row.functionArn, row.functionName,
                                              row.executedVersion, row.architecture, row.startTimeMs, row.durationMicros, row.billedMs,
                                              row.memoryMB, row.initMicros, row.initBilled, row.maxMemoryUsedMB, row.cpuMicros,
                                              row.outcome, row.requests])
        }
    }

    public func ledgerRows(fromMs: Int64, toMs: Int64, accountId: String?, functionName: String?) async throws -> [LedgerRow] {
        try await read { db in
            var sql = "SELECT * FROM ledger WHERE start_time_ms >= ? AND start_time_ms < ?"
            var arguments: StatementArguments = [fromMs, toMs]
            if let accountId { sql += " AND account_id = ?"; arguments += [accountId] }
            if let functionName { sql += " AND function_name = ?"; arguments += [functionName] }
            sql += " ORDER BY start_time_ms, request_id, attempt"
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                LedgerRow(requestId: row["request_id"], attempt: row["attempt"], accountId: row["account_id"], functionArn: row["function_arn"],
                          functionName: row["function_name"], executedVersion: row["executed_version"], architecture: row["architecture"],
                          startTimeMs: row["start_time_ms"], durationMicros: row["duration_us"], billedMs: row["billed_ms"],
                          memoryMB: row["memory_mb"], initMicros: row["init_us"], initBilled: row["init_billed"],
                          maxMemoryUsedMB: row["max_memory_used_mb"], cpuMicros: row["cpu_us"], outcome: row["outcome"], requests: row["requests"])
            }
        }
    }

    public func hourlyUsage(fromMs: Int64, toMs: Int64, accountId: String?, functionName: String?) async throws -> [HourlyUsage] {
        try await read { db in
            var filter = ""
            var arguments: StatementArguments = []
            if let accountId { filter += " AND account_id = ?"; arguments += [accountId] }
            if let functionName { filter += " AND function_name = ?"; arguments += [functionName] }
            let sql = """
                SELECT hour, account_id, function_arn, function_name, architecture, SUM(requests) AS requests, SUM(billed_ms) AS billed_ms,
                       SUM(mb_ms) AS mb_ms, SUM(duration_us) AS duration_us, SUM(init_us) AS init_us, SUM(cpu_us) AS cpu_us
                FROM (
                    SELECT (start_time_ms / 3600000) * 3600000 AS hour, account_id, function_arn, function_name, architecture, requests,
                           billed_ms, memory_mb * billed_ms AS mb_ms, duration_us, init_us, cpu_us
                    FROM ledger WHERE start_time_ms >= ? AND start_time_ms < ?\(filter)
                    UNION ALL
                    SELECT hour_start_ms, account_id, function_arn, function_name, architecture, requests, billed_ms, mb_ms, duration_us, init_us, cpu_us
                    FROM ledger_hourly WHERE hour_start_ms >= ? AND hour_start_ms < ?\(filter)
                )
                GROUP BY hour, account_id, function_arn, function_name, architecture
                ORDER BY hour, account_id, function_arn, architecture
                """
            var all: StatementArguments = [fromMs, toMs]
            all += arguments
            all += [fromMs, toMs]
            all += arguments
            return try Row.fetchAll(db, sql: sql, arguments: all).map { row in
                HourlyUsage(hourStartMs: row["hour"], accountId: row["account_id"], functionArn: row["function_arn"],
                            functionName: row["function_name"], architecture: row["architecture"], requests: row["requests"],
                            billedMs: row["billed_ms"], mbMs: row["mb_ms"], durationMicros: row["duration_us"],
                            initMicros: row["init_us"], cpuMicros: row["cpu_us"])
            }
        }
    }

    public func rollUpLedger(beforeMs: Int64) async throws -> Int {
        // Whole hours only: a partly rolled-up hour would still sum right, but keep it simple to read.
        let cutoff = (beforeMs / 3_600_000) * 3_600_000
        return try await write { db in
            try db.execute(sql: """
                INSERT INTO ledger_hourly (hour_start_ms, account_id, function_arn, function_name, architecture,
                                           requests, billed_ms, mb_ms, duration_us, init_us, cpu_us)
                SELECT (start_time_ms / 3600000) * 3600000, account_id, function_arn, function_name, architecture,
                       SUM(requests), SUM(billed_ms), SUM(memory_mb * billed_ms), SUM(duration_us), SUM(init_us), SUM(cpu_us)
                FROM ledger WHERE start_time_ms < ?
                GROUP BY 1, account_id, function_arn, function_name, architecture
                ON CONFLICT(hour_start_ms, account_id, function_arn, architecture) DO UPDATE SET
                    requests = requests + excluded.requests, billed_ms = billed_ms + excluded.billed_ms, mb_ms = mb_ms + excluded.mb_ms,
                    duration_us = duration_us + excluded.duration_us, init_us = init_us + excluded.init_us, cpu_us = cpu_us + excluded.cpu_us
                """, arguments: [cutoff])
            try db.execute(sql: "DELETE FROM ledger WHERE start_time_ms < ?", arguments: [cutoff])
            return db.changesCount
        }
    }

    public func ledgerRowCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ledger") ?? 0 }
    }
}
