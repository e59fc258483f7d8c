#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import LaminaStore

/// How an export groups usage.
public struct Grouping: Sendable, Equatable {
    public enum Period: String, Sendable, CaseIterable { case hour, day, month }
    public enum Dimension: String, Sendable, CaseIterable { case function, tenant }

    public var period: Period
    public var dimension: Dimension

    public init(period: Period = .day, dimension: Dimension = .function) {
        self.period = period
        self.dimension = dimension
    }

    /// Parses `day,function`, `hour`, `month,tenant`, ...
    public init?(_ text: String) {
        var period = Period.day, dimension = Dimension.function
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if let value = Period(rawValue: part) { period = value } else if let value = Dimension(rawValue: part) { dimension = value } else { return nil }
        }
        self.init(period: period, dimension: dimension)
    }
}

/// One group of one period: usage and what it costs.
public struct UsageGroup: Sendable, Equatable {
    public var periodStartMs: Int64
    public var periodEndMs: Int64
    public var accountId: String
    /// The function's ARN when grouped by function, empty when grouped by tenant.
    public var functionArn: String
    public var functionName: String
    public var architecture: String
    public var region: String
    public var requests: Int64
    public var billedMs: Int64
    public var mbMs: Int64
    public var durationMicros: Int64
    public var initMicros: Int64
    public var cpuMicros: Int64
    public var requestCost: Decimal
    public var computeCost: Decimal

    /// GB-seconds: memory (GB of 1024 MB) times billed seconds, exact.
    public var gbSeconds: Decimal { Decimal(mbMs) / 1_024_000 }
    public var cost: Decimal { requestCost + computeCost }
}

/// The billing report of a period: deterministic (same input, same bytes), decimal throughout.
public struct BillingReport: Sendable {
    public var fromMs: Int64
    public var toMs: Int64
    public var grouping: Grouping
    public var pricing: Pricing
    public var groups: [UsageGroup]

    /// Reads the ledger for [from, to) and prices it. With a free tier, the month's usage before
    /// `from` is read too, so the allowance is spent the same way whatever the export's range.
    public static func build(store: any LedgerStore, fromMs: Int64, toMs: Int64, accountId: String?, functionName: String?,
                             grouping: Grouping, pricing: Pricing) async throws -> BillingReport {
        let readFrom = pricing.freeTier != nil ? UTC.monthStart(fromMs) : fromMs
        let hourly = try await store.hourlyUsage(fromMs: readFrom, toMs: toMs, accountId: accountId, functionName: functionName)
        let priced = price(hourly, pricing: pricing)
        var groups: [String: UsageGroup] = [:]
        var order: [String] = []
        for (usage, requestCost, computeCost) in priced where usage.hourStartMs >= fromMs {
            let (start, end) = UTC.period(grouping.period, containing: usage.hourStartMs)
            let resource = grouping.dimension == .function ? usage.functionArn : ""
            let key = "\(start)|\(usage.accountId)|\(resource)|\(usage.architecture)"
            if groups[key] == nil {
                order.append(key)
                groups[key] = UsageGroup(
                    periodStartMs: start, periodEndMs: end, accountId: usage.accountId, functionArn: resource,
                    functionName: grouping.dimension == .function ? usage.functionName : "", architecture: usage.architecture,
                    region: region(of: usage.functionArn), requests: 0, billedMs: 0, mbMs: 0, durationMicros: 0, initMicros: 0,
                    cpuMicros: 0, requestCost: 0, computeCost: 0)
            }
            groups[key]!.requests += usage.requests
            groups[key]!.billedMs += usage.billedMs
            groups[key]!.mbMs += usage.mbMs
            groups[key]!.durationMicros += usage.durationMicros
            groups[key]!.initMicros += usage.initMicros
            groups[key]!.cpuMicros += usage.cpuMicros
            groups[key]!.requestCost += requestCost
            groups[key]!.computeCost += computeCost
        }
        let sorted = order.compactMap { groups[$0] }.sorted {
            ($0.periodStartMs, $0.accountId, $0.functionArn, $0.architecture) < ($1.periodStartMs, $1.accountId, $1.functionArn, $1.architecture)
        }
        return BillingReport(fromMs: fromMs, toMs: toMs, grouping: grouping, pricing: pricing, groups: sorted)
    }

    /// Prices hourly usage in chronological order, spending each tenant's monthly free tier first.
    static func price(_ hourly: [HourlyUsage], pricing: Pricing) -> [(HourlyUsage, Decimal, Decimal)] {
        var freeLeft: [String: (requests: Decimal, gbSeconds: Decimal)] = [:]
        return hourly.sorted { ($0.hourStartMs, $0.accountId, $0.functionArn, $0.architecture) < ($1.hourStartMs, $1.accountId, $1.functionArn, $1.architecture) }
            .map { usage in
                var requests = Decimal(usage.requests)
                var gbSeconds = Decimal(usage.mbMs) / 1_024_000
                if let free = pricing.freeTier {
                    let key = "\(usage.accountId)|\(UTC.monthStart(usage.hourStartMs))"
                    var left = freeLeft[key] ?? (free.requests, free.gbSeconds)
                    let freeRequests = min(left.requests, requests), freeCompute = min(left.gbSeconds, gbSeconds)
                    left.requests -= freeRequests
                    left.gbSeconds -= freeCompute
                    requests -= freeRequests
                    gbSeconds -= freeCompute
                    freeLeft[key] = left
                }
                return (usage, requests * pricing.requestRate(usage.architecture), gbSeconds * pricing.gbSecondRate(usage.architecture))
            }
    }

    static func region(of arn: String) -> String {
        let parts = arn.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count > 3 ? String(parts[3]) : "us-east-1"
    }

    // MARK: Totals

    public var totalRequests: Int64 { groups.reduce(0) { $0 + $1.requests } }
    public var totalBilledMs: Int64 { groups.reduce(0) { $0 + $1.billedMs } }
    public var totalGBSeconds: Decimal { groups.reduce(Decimal(0)) { $0 + $1.gbSeconds } }
    public var totalCost: Decimal { groups.reduce(Decimal(0)) { $0 + $1.cost } }

    // MARK: CSV (Cost and Usage Report columns)

    /// The CUR column names this export writes, in order.
    public static let curColumns = [
        "identity/LineItemId", "identity/TimeInterval", "bill/BillingPeriodStartDate", "bill/BillingPeriodEndDate",
        "lineItem/UsageAccountId", "lineItem/LineItemType", "lineItem/UsageStartDate", "lineItem/UsageEndDate",
        "lineItem/ProductCode", "lineItem/UsageType", "lineItem/Operation", "lineItem/ResourceId", "lineItem/UsageAmount",
        "lineItem/UnblendedRate", "lineItem/UnblendedCost", "lineItem/CurrencyCode", "lineItem/LineItemDescription",
        "product/ProductName", "product/region", "pricing/unit",
    ]

    /// Two line items per group, as in a Cost and Usage Report: requests and GB-seconds. Usage
    /// amounts are exact; costs are rounded half-to-even to 10 decimal places.
    public func csv() -> String {
        var lines = [Self.curColumns.joined(separator: ",")]
        for group in groups {
            let prefix = Self.usageTypePrefix(group.region)
            let arm = group.architecture == "arm64" ? "-ARM" : ""
            let (billStart, billEnd) = UTC.period(.month, containing: group.periodStartMs)
            let interval = "\(UTC.iso(group.periodStartMs))/\(UTC.iso(group.periodEndMs))"
            let items: [(String, Decimal, Decimal, Decimal, String, String)] = [
                ("\(prefix)Request\(arm)", Decimal(group.requests), pricing.requestRate(group.architecture), group.requestCost,
                 "\(pricing.currency) \(pricing.requestRates[group.architecture, default: pricing.requestRates["x86_64"] ?? 0].fixed(2)) per 1M requests", "Requests"),
                ("\(prefix)Lambda-GB-Second\(arm)", group.gbSeconds, pricing.gbSecondRate(group.architecture), group.computeCost,
                 "\(pricing.currency) \(pricing.gbSecondRate(group.architecture).plain) per GB-second", "Lambda-GB-Second"),
            ]
            for (usageType, amount, rate, cost, description, unit) in items {
                let fields = [
                    Self.lineItemId(group, usageType), interval, UTC.iso(billStart), UTC.iso(billEnd), group.accountId, "Usage",
                    UTC.iso(group.periodStartMs), UTC.iso(group.periodEndMs), "AWSLambda", usageType, "Invoke", group.functionArn,
                    amount.plain, rate.plain, cost.rounded(10).plain, pricing.currency, description, "AWS Lambda", group.region, unit,
                ]
                lines.append(fields.map(Self.csvField).joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// JSON lines for programs: one object per group, amounts as decimal strings.
    public func jsonLines() -> String {
        groups.map { group in
            let object: [(String, String)] = [
                ("periodStart", jsonText(UTC.iso(group.periodStartMs))), ("periodEnd", jsonText(UTC.iso(group.periodEndMs))),
                ("accountId", jsonText(group.accountId)), ("functionArn", jsonText(group.functionArn)),
                ("functionName", jsonText(group.functionName)), ("architecture", jsonText(group.architecture)),
                ("region", jsonText(group.region)), ("requests", String(group.requests)), ("billedMs", String(group.billedMs)),
                ("gbSeconds", jsonText(group.gbSeconds.plain)), ("durationMs", jsonText((Decimal(group.durationMicros) / 1000).plain)),
                ("initMs", jsonText((Decimal(group.initMicros) / 1000).plain)), ("cpuMs", jsonText((Decimal(group.cpuMicros) / 1000).plain)),
                ("requestCost", jsonText(group.requestCost.rounded(10).plain)), ("computeCost", jsonText(group.computeCost.rounded(10).plain)),
                ("cost", jsonText(group.cost.rounded(10).plain)), ("currency", jsonText(pricing.currency)),
            ]
            return "{" + object.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        }.map { $0 + "\n" }.joined()
    }

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A stable id for a line item: the same usage always gets the same id.
    static func lineItemId(_ group: UsageGroup, _ usageType: String) -> String {
        let digest = SHA256.hash(data: Array("\(group.periodStartMs)|\(group.accountId)|\(group.functionArn)|\(group.architecture)|\(usageType)".utf8))
        return digest.prefix(20).map { String(format: "%02x", $0) }.joined()
    }

    /// CUR usage types carry a region code, except us-east-1.
    static func usageTypePrefix(_ region: String) -> String {
        let codes = ["us-east-1": "", "us-east-2": "USE2-", "us-west-1": "USW1-", "us-west-2": "USW2-", "eu-west-1": "EUW1-",
                     "eu-west-2": "EUW2-", "eu-west-3": "EUW3-", "eu-central-1": "EUC1-", "eu-north-1": "EUN1-", "ap-northeast-1": "APN1-",
                     "ap-northeast-2": "APN2-", "ap-southeast-1": "APS1-", "ap-southeast-2": "APS2-", "ap-south-1": "APS3-",
                     "sa-east-1": "SAE1-", "ca-central-1": "CAN1-"]
        return codes[region] ?? "\(region.uppercased())-"
    }
}

func jsonText(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// UTC calendar arithmetic on Unix milliseconds.
public enum UTC {
    public static func period(_ period: Grouping.Period, containing ms: Int64) -> (Int64, Int64) {
        switch period {
        case .hour:
            let start = floorDiv(ms, 3_600_000) * 3_600_000
            return (start, start + 3_600_000)
        case .day:
            let start = floorDiv(ms, 86_400_000) * 86_400_000
            return (start, start + 86_400_000)
        case .month:
            let start = monthStart(ms)
            return (start, monthStart(start + 32 * 86_400_000))
        }
    }

    public static func monthStart(_ ms: Int64) -> Int64 {
        var seconds = time_t(floorDiv(ms, 1000))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        parts.tm_mday = 1
        parts.tm_hour = 0
        parts.tm_min = 0
        parts.tm_sec = 0
        return Int64(timegm(&parts)) * 1000
    }

    public static func iso(_ ms: Int64) -> String {
        var seconds = time_t(floorDiv(ms, 1000))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday))T\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec))Z"
    }

    /// Parses `2026-11-26`, `2026-11-26T13:00:00Z` or `2026-11-26T13:00Z` (always UTC).
    public static func parse(_ text: String) -> Int64? {
        let formats = ["yyyy-MM-dd'T'HH:mm:ss'Z'", "yyyy-MM-dd'T'HH:mm'Z'", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd"]
        for format in formats {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        }
        return nil
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
}
