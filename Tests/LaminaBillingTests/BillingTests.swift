import Foundation
import LaminaBilling
import LaminaStore
import Testing

/// A real SQLite store in a temporary directory.
final class TemporaryLedger {
    let directory = NSTemporaryDirectory() + "lamina-billing-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let store: SQLiteStore

    init() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        store = try SQLiteStore(path: directory + "/lamina.db")
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }
}

func record(_ id: String, account: String = "111111111111", function: String = "f", start: Int64, durationMicros: Int64,
            memory: Int = 1024, initMicros: Int64 = 0, architecture: String = "x86_64", outcome: MeterRecord.Outcome = .success) -> MeterRecord {
    let billed = MeterRecord.billedMilliseconds(durationMicros: durationMicros, initMicros: initMicros, initBilled: initMicros > 0)
    return MeterRecord(requestId: id, accountId: account, functionArn: "arn:aws:lambda:us-east-1:\(account):function:\(function)",
                       functionName: function, executedVersion: "$LATEST", architecture: architecture, startTimeMs: start,
                       durationMicros: durationMicros, billedMs: billed, memoryMB: memory, initMicros: initMicros, initBilled: initMicros > 0,
                       maxMemoryUsedMB: 30, cpuMicros: 100, outcome: outcome)
}

let day: Int64 = 86_400_000
/// 2026-11-26T00:00:00Z
let nov26: Int64 = 1_795_651_200_000

@Suite("Billing ledger and reports")
struct BillingTests {
    @Test func groupCommitWritesEveryRecordInFewerTransactions() async throws {
        let ledger = try TemporaryLedger()
        let writer = LedgerWriter(store: ledger.store)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<500 {
                group.addTask { try await writer.record(record("r\(index)", start: nov26 + Int64(index), durationMicros: 1500)) }
            }
            try await group.waitForAll()
        }
        #expect(try await ledger.store.ledgerRowCount() == 500)
        let (commits, written) = writer.commitStatistics
        #expect(written == 500)
        #expect(commits < 500, "\(commits) transactions for 500 records: no group commit")
    }

    @Test func closedWriterCommitsWhatItAcceptedAndRefusesTheRest() async throws {
        let ledger = try TemporaryLedger()
        let writer = LedgerWriter(store: ledger.store)
        try await writer.record(record("before-close", start: nov26, durationMicros: 1000))
        writer.close()
        await #expect(throws: LedgerWriterClosed.self) {
            try await writer.record(record("after-close", start: nov26 + 1, durationMicros: 1000))
        }
        #expect(try await ledger.store.ledgerRowCount() == 1)
    }

    @Test func eitherDurabilityKeepsEveryRecord() async throws {
        for durability in StoreDurability.allCases {
            let ledger = try TemporaryLedger()
            let store = try SQLiteStore(path: ledger.directory + "/\(durability.rawValue).db", durability: durability)
            let writer = LedgerWriter(store: store)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<100 {
                    group.addTask { try await writer.record(record("d\(index)", start: nov26 + Int64(index), durationMicros: 900)) }
                }
                try await group.waitForAll()
            }
            #expect(try await store.ledgerRowCount() == 100)
        }
    }

    @Test func billedDurationIsCeilingOfDurationAndInitWhenBilled() {
        #expect(MeterRecord.billedMilliseconds(durationMicros: 1270, initMicros: 0, initBilled: false) == 2)
        #expect(MeterRecord.billedMilliseconds(durationMicros: 2000, initMicros: 0, initBilled: false) == 2)
        // AWS's example: Duration 1448.90 ms + Init 534.39 ms -> Billed 1984 ms.
        #expect(MeterRecord.billedMilliseconds(durationMicros: 1_448_900, initMicros: 534_390, initBilled: true) == 1984)
        #expect(MeterRecord.billedMilliseconds(durationMicros: 1_448_900, initMicros: 534_390, initBilled: false) == 1449)
    }

    @Test func pricesAreExactDecimals() async throws {
        let ledger = try TemporaryLedger()
        let writer = LedgerWriter(store: ledger.store)
        // 1,000,000 requests of 1 ms at 1024 MB: 1000 GB-s -> $0.0166667 + $0.20.
        var records: [MeterRecord] = []
        for index in 0..<1000 { records.append(record("p\(index)", start: nov26 + 1000 + Int64(index), durationMicros: 1000)) }
        try await ledger.store.appendLedger(records.map { LedgerWriter.testRow($0) })
        _ = writer
        let report = try await BillingReport.build(store: ledger.store, fromMs: nov26, toMs: nov26 + day, accountId: nil, functionName: nil,
                                                   grouping: Grouping(period: .day, dimension: .function), pricing: .aws)
        #expect(report.totalRequests == 1000)
        #expect(report.totalBilledMs == 1000)
        #expect(report.totalGBSeconds == Decimal(1))
        #expect(report.totalCost == Decimal(string: "0.0000166667")! + Decimal(string: "0.0002")!)
        #expect(report.groups.first?.computeCost == Decimal(string: "0.0000166667")!)
    }

    @Test func invocationsAreBilledToTheHourAndDayTheyStartedIn() async throws {
        let ledger = try TemporaryLedger()
        // Starts half a second before midnight UTC and runs for a second.
        try await ledger.store.appendLedger([LedgerWriter.testRow(record("midnight", start: nov26 + day - 500, durationMicros: 1_000_000))])
        let byDay = try await BillingReport.build(store: ledger.store, fromMs: nov26, toMs: nov26 + 2 * day, accountId: nil, functionName: nil,
                                                  grouping: Grouping(period: .day, dimension: .function), pricing: .aws)
        #expect(byDay.groups.count == 1)
        #expect(byDay.groups[0].periodStartMs == nov26)
        #expect(byDay.groups[0].billedMs == 1000)
        let nextDay = try await BillingReport.build(store: ledger.store, fromMs: nov26 + day, toMs: nov26 + 2 * day, accountId: nil, functionName: nil,
                                                    grouping: Grouping(period: .day, dimension: .function), pricing: .aws)
        #expect(nextDay.groups.isEmpty)
        let byHour = try await BillingReport.build(store: ledger.store, fromMs: nov26, toMs: nov26 + 2 * day, accountId: nil, functionName: nil,
                                                   grouping: Grouping(period: .hour, dimension: .function), pricing: .aws)
        #expect(byHour.groups.map(\.periodStartMs) == [nov26 + day - 3_600_000])
    }

    @Test func groupingByTenantAndFunctionAndPeriod() async throws {
        let ledger = try TemporaryLedger()
        let rows = [
            record("a1", account: "111111111111", function: "f", start: nov26 + 3_600_000, durationMicros: 10_000),
            record("a2", account: "111111111111", function: "g", start: nov26 + 3_600_000 * 2, durationMicros: 20_000),
            record("b1", account: "222222222222", function: "f", start: nov26 + day + 5, durationMicros: 30_000, memory: 2048),
            record("b2", account: "222222222222", function: "f", start: nov26 + 40 * day, durationMicros: 40_000, architecture: "arm64"),
        ]
        try await ledger.store.appendLedger(rows.map { LedgerWriter.testRow($0) })
        func build(_ grouping: String, tenant: String? = nil, function: String? = nil) async throws -> BillingReport {
            try await BillingReport.build(store: ledger.store, fromMs: nov26, toMs: nov26 + 60 * day, accountId: tenant, functionName: function,
                                          grouping: Grouping(grouping)!, pricing: .aws)
        }
        #expect(try await build("day,function").groups.map { "\($0.accountId)/\($0.functionName)" } == ["111111111111/f", "111111111111/g", "222222222222/f", "222222222222/f"])
        #expect(try await build("month,tenant").groups.map(\.requests) == [2, 1, 1])
        #expect(try await build("month,tenant").groups.map(\.architecture) == ["x86_64", "x86_64", "arm64"])
        #expect(try await build("hour,function").groups.count == 4)
        #expect(try await build("day,function", tenant: "111111111111").totalBilledMs == 30)
        #expect(try await build("day,function", function: "f").totalRequests == 3)
        let arm = try await build("month,function", tenant: "222222222222")
        #expect(arm.csv().contains(",Lambda-GB-Second-ARM,"))
        #expect(arm.groups.first { $0.architecture == "arm64" }?.computeCost == Decimal(string: "0.04")! * Decimal(string: "0.0000133334")!)
    }

    @Test func csvHasTheCostAndUsageReportColumnsAndIsTheSameEveryTime() async throws {
        let ledger = try TemporaryLedger()
        try await ledger.store.appendLedger((0..<20).map { LedgerWriter.testRow(record("c\($0)", start: nov26 + Int64($0) * 600_000, durationMicros: 12_345)) })
        let first = try await BillingReport.build(store: ledger.store, fromMs: nov26, toMs: nov26 + day, accountId: nil, functionName: nil,
                                                  grouping: Grouping(), pricing: .aws).csv()
        let second = try await BillingReport.build(store: ledger.store, fromMs: nov26, toMs: nov26 + day, accountId: nil, functionName: nil,
                                                   grouping: Grouping(), pricing: .aws).csv()
        #expect(first == second)
        let lines = first.split(separator: "\n")
        #expect(lines.first == BillingReport.curColumns.joined(separator: ",")[...])
        #expect(lines.count == 3)
        #expect(lines[1].contains(",Request,Invoke,") && lines[2].contains(",Lambda-GB-Second,Invoke,"))
        #expect(lines[1].contains(",20,0.0000002,0.000004,USD,"))
    }

    @Test func freeTierIsSpentChronologicallyWhateverTheRange() async throws {
        let ledger = try TemporaryLedger()
        var pricing = Pricing.aws
        pricing.freeTier = Pricing.FreeTier(requests: 3, gbSeconds: Decimal(string: "0.002")!)
        try await ledger.store.appendLedger((0..<5).map { LedgerWriter.testRow(record("ft\($0)", start: nov26 + Int64($0) * day, durationMicros: 1000)) })
        let whole = try await BillingReport.build(store: ledger.store, fromMs: nov26, toMs: nov26 + 5 * day, accountId: nil, functionName: nil,
                                                  grouping: Grouping(period: .day, dimension: .function), pricing: pricing)
        #expect(whole.groups.map(\.requestCost) == [0, 0, 0, Decimal(string: "0.0000002")!, Decimal(string: "0.0000002")!])
        #expect(whole.groups.map(\.computeCost)[0...1] == [0, 0])
        #expect(whole.groups[2].computeCost > 0)
        // Exporting only the last two days prices them the same: the earlier days' usage spent the allowance.
        let tail = try await BillingReport.build(store: ledger.store, fromMs: nov26 + 3 * day, toMs: nov26 + 5 * day, accountId: nil, functionName: nil,
                                                 grouping: Grouping(period: .day, dimension: .function), pricing: pricing)
        #expect(tail.groups.map(\.cost) == Array(whole.groups.map(\.cost)[3...]))
    }

    @Test func rollingUpKeepsEveryTotal() async throws {
        let ledger = try TemporaryLedger()
        try await ledger.store.appendLedger((0..<50).map {
            LedgerWriter.testRow(record("ru\($0)", function: $0 % 2 == 0 ? "even" : "odd", start: nov26 + Int64($0) * 900_000, durationMicros: 1000 + Int64($0) * 37, memory: 128 + $0))
        })
        func export() async throws -> String {
            try await BillingReport.build(store: ledger.store, fromMs: nov26, toMs: nov26 + 2 * day, accountId: nil, functionName: nil,
                                          grouping: Grouping(period: .hour, dimension: .function), pricing: .aws).csv()
        }
        let before = try await export()
        let moved = try await ledger.store.rollUpLedger(beforeMs: nov26 + 6 * 3_600_000)
        #expect(moved > 0)
        #expect(try await ledger.store.ledgerRowCount() == 50 - moved)
        #expect(try await export() == before)
        _ = try await ledger.store.rollUpLedger(beforeMs: nov26 + 3 * day)
        #expect(try await ledger.store.ledgerRowCount() == 0)
        #expect(try await export() == before)
    }

    @Test func pricingFileOverridesTheDefaults() throws {
        let path = NSTemporaryDirectory() + "pricing-\(getpid()).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"gbSecondRates": {"x86_64": "0.00002"}, "billInit": false, "freeTier": {"requests": "1000000", "gbSeconds": "400000"}}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let pricing = try Pricing.load(path: path)
        #expect(pricing.gbSecondRates["x86_64"] == Decimal(string: "0.00002")!)
        #expect(pricing.gbSecondRates["arm64"] == Pricing.aws.gbSecondRates["arm64"])
        #expect(pricing.billInit == false)
        #expect(pricing.freeTier == Pricing.FreeTier.aws)
    }

    @Test func htmlReportIsSelfContained() async throws {
        let ledger = try TemporaryLedger()
        try await ledger.store.appendLedger([LedgerWriter.testRow(record("h1", start: nov26 + 3_600_000, durationMicros: 5000))])
        let byTenant = try await BillingReport.build(store: ledger.store, fromMs: nov26, toMs: nov26 + day, accountId: nil, functionName: nil,
                                                     grouping: Grouping(period: .hour, dimension: .tenant), pricing: .aws)
        let html = HTMLReport.render(byTenant: byTenant, byFunction: byTenant, tenantNames: ["111111111111": "acme"], title: "t")
        #expect(html.contains("<svg id=\"cost-chart\""))
        #expect(html.contains("<polyline class=\"series\""))
        #expect(!html.contains("http://") || html.components(separatedBy: "http://").allSatisfy { $0.hasPrefix("www.w3.org") || !$0.isEmpty })
        #expect(!html.contains("<script") && !html.contains("src=") && !html.contains("@import"))
    }
}
