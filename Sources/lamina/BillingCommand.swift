import ArgumentParser
import LaminaCommandLine
import Foundation
import LaminaBilling
import LaminaStore

/// The billing ledger, for operators.
struct BillingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billing",
        abstract: "Export, summarise and report the billing ledger; roll old entries up.",
        subcommands: [BillingExport.self, BillingSummary.self, BillingReportCommand.self, BillingEntries.self, BillingRollup.self]
    )
}

/// What every billing command reads: the period, filters and prices.
struct BillingOptions: ParsableArguments {
    @OptionGroup var host: HostOptions
    @Option(help: "Start of the period, UTC (2026-11-01 or 2026-11-01T13:00:00Z).") var from: String
    @Option(help: "End of the period, UTC, exclusive.") var to: String
    @Option(help: "Only this tenant (account id).") var tenant: String?
    @Option(help: "Only functions of this name.") var function: String?
    @Option(help: "A pricing file (JSON); AWS's us-east-1 prices by default.") var pricing: String?

    func validate() throws {
        guard let start = UTC.parse(from) else { throw ValidationError("--from `\(from)` is not a UTC date or time (2026-11-26 or 2026-11-26T13:00:00Z)") }
        guard let end = UTC.parse(to) else { throw ValidationError("--to `\(to)` is not a UTC date or time (2026-11-26 or 2026-11-26T13:00:00Z)") }
        guard start < end else { throw ValidationError("--from must be before --to") }
    }

    var fromMs: Int64 { UTC.parse(from)! }
    var toMs: Int64 { UTC.parse(to)! }

    func prices() throws -> Pricing {
        guard let pricing else { return .aws }
        do { return try Pricing.load(path: pricing) } catch { throw UsageError("\(error)") }
    }

    func store() throws -> SQLiteStore {
        let path = "\(host.stateDir)/lamina.db"
        guard FileManager.default.fileExists(atPath: path) else { throw UsageError("no Lamina store at \(path): is --state-dir right?") }
        return try SQLiteStore(path: path)
    }

    func report(_ grouping: Grouping) async throws -> BillingReport {
        try await BillingReport.build(store: store(), fromMs: fromMs, toMs: toMs, accountId: tenant, functionName: function,
                                      grouping: grouping, pricing: prices())
    }
}

struct BillingExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the billing report of a period: CSV with Cost and Usage Report columns, or JSON lines.",
        discussion: "Usage amounts are exact; costs are decimal, rounded half-to-even to 10 places. The same period always exports the same bytes."
    )
    @OptionGroup var options: BillingOptions
    @Option(help: "hour|day|month and function|tenant, e.g. day,function.") var groupBy: String = "day,function"
    @Option(help: "csv or jsonl.") var format: String = "csv"
    @Option(help: "Write to this file instead of stdout.") var output: String?

    func validate() throws {
        guard Grouping(groupBy) != nil else { throw ValidationError("--group-by must be hour|day|month and/or function|tenant, e.g. day,function") }
        guard ["csv", "jsonl"].contains(format) else { throw ValidationError("--format must be csv or jsonl") }
    }

    func run() async throws {
        let report = try await options.report(Grouping(groupBy)!)
        let text = format == "csv" ? report.csv() : report.jsonLines()
        if let output {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

struct BillingSummary: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "summary", abstract: "Print requests, GB-seconds and cost per tenant and function.")
    @OptionGroup var options: BillingOptions

    func run() async throws {
        let report = try await options.report(Grouping(period: .month, dimension: .function))
        let store = try options.store()
        let names = Dictionary(try await store.tenants().map { ($0.accountId, $0.name) }, uniquingKeysWith: { a, _ in a })
        var totals: [String: (requests: Int64, gbSeconds: Decimal, cost: Decimal, billedMs: Int64)] = [:]
        for group in report.groups {
            let key = "\(group.accountId)|\(group.functionName)"
            var total = totals[key] ?? (0, 0, 0, 0)
            total.requests += group.requests
            total.gbSeconds += group.gbSeconds
            total.cost += group.cost
            total.billedMs += group.billedMs
            totals[key] = total
        }
        var rows = [["TENANT", "ACCOUNT", "FUNCTION", "REQUESTS", "BILLED MS", "GB-SECONDS", "COST (\(report.pricing.currency))"]]
        for key in totals.keys.sorted() {
            let parts = key.split(separator: "|", maxSplits: 1).map(String.init)
            let total = totals[key]!
            rows.append([names[parts[0]] ?? "?", parts[0], parts[1], String(total.requests), String(total.billedMs),
                         total.gbSeconds.formatted3, total.cost.formatted2])
        }
        rows.append(["TOTAL", "", "", String(report.totalRequests), String(report.totalBilledMs), report.totalGBSeconds.formatted3, report.totalCost.formatted2])
        print("\(options.from) to \(options.to) (UTC)")
        printTable(rows)
    }
}

struct BillingReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Write a one-page HTML report with charts of cost and duration over time per tenant.")
    @OptionGroup var options: BillingOptions
    @Option(help: "The HTML file to write.") var html: String

    func run() async throws {
        let span = options.toMs - options.fromMs
        let period: Grouping.Period = span <= 2 * 86_400_000 ? .hour : (span <= 120 * 86_400_000 ? .day : .month)
        let byTenant = try await options.report(Grouping(period: period, dimension: .tenant))
        var byFunction = try await options.report(Grouping(period: .month, dimension: .function))
        // The table shows one row per function over the whole period.
        var merged: [String: UsageGroup] = [:]
        for group in byFunction.groups {
            let key = group.functionArn
            if var existing = merged[key] {
                existing.requests += group.requests
                existing.billedMs += group.billedMs
                existing.mbMs += group.mbMs
                existing.durationMicros += group.durationMicros
                existing.requestCost += group.requestCost
                existing.computeCost += group.computeCost
                merged[key] = existing
            } else {
                merged[key] = group
            }
        }
        byFunction.groups = merged.values.sorted { ($0.accountId, $0.functionArn) < ($1.accountId, $1.functionArn) }
        let names = Dictionary(try await options.store().tenants().map { ($0.accountId, $0.name) }, uniquingKeysWith: { a, _ in a })
        let page = HTMLReport.render(byTenant: byTenant, byFunction: byFunction, tenantNames: names, title: "Lamina billing report")
        try page.write(toFile: html, atomically: true, encoding: .utf8)
        print("wrote \(html)")
    }
}

struct BillingEntries: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "entries", abstract: "Print the raw ledger entries of a period as JSON lines.")
    @OptionGroup var options: BillingOptions

    func run() async throws {
        let rows = try await options.store().ledgerRows(fromMs: options.fromMs, toMs: options.toMs, accountId: options.tenant, functionName: options.function)
        var out = ""
        for row in rows {
            let gbSeconds = Decimal(row.memoryMB) * Decimal(row.billedMs) / 1_024_000
            out += "{\"requestId\":\"\(row.requestId)\",\"attempt\":\(row.attempt),\"accountId\":\"\(row.accountId)\",\"functionArn\":\"\(row.functionArn)\","
                + "\"executedVersion\":\"\(row.executedVersion)\",\"architecture\":\"\(row.architecture)\",\"startTime\":\"\(UTC.iso(row.startTimeMs))\","
                + "\"startTimeMs\":\(row.startTimeMs),\"durationMs\":\"\((Decimal(row.durationMicros) / 1000).formatted3)\",\"billedMs\":\(row.billedMs),"
                + "\"memoryMB\":\(row.memoryMB),\"gbSeconds\":\"\(gbSeconds)\",\"initMs\":\"\((Decimal(row.initMicros) / 1000).formatted3)\","
                + "\"initBilled\":\(row.initBilled),\"maxMemoryUsedMB\":\(row.maxMemoryUsedMB),\"cpuMs\":\"\((Decimal(row.cpuMicros) / 1000).formatted3)\","
                + "\"outcome\":\"\(row.outcome)\",\"requests\":\(row.requests)}\n"
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}

struct BillingRollup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollup", abstract: "Roll ledger entries older than some days up into hourly aggregates (totals stay the same).")
    @OptionGroup var host: HostOptions
    @Option(help: "Roll up entries older than this many days.") var olderThanDays: Double

    func run() async throws {
        let store = try SQLiteStore(path: "\(host.stateDir)/lamina.db")
        let cutoff = Int64((Date().timeIntervalSince1970 - olderThanDays * 86_400) * 1000)
        print("rolled up \(try await store.rollUpLedger(beforeMs: cutoff)) entries")
    }
}

extension Decimal {
    var formatted2: String { format(2) }
    var formatted3: String { format(3) }

    func format(_ scale: Int) -> String {
        var value = self
        var result = Decimal()
        NSDecimalRound(&result, &value, scale, .bankers)
        let text = NSDecimalNumber(decimal: result).stringValue
        let parts = text.split(separator: ".", maxSplits: 1)
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        return "\(parts[0]).\(fraction)\(String(repeating: "0", count: max(0, scale - fraction.count)))"
    }
}
