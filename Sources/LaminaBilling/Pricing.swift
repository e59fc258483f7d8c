import Foundation

/// What invocations cost. Amounts are decimal (Foundation's `Decimal`), never binary floating point.
public struct Pricing: Sendable, Equatable, Codable {
    /// USD per GB-second of billed duration, by architecture.
    public var gbSecondRates: [String: Decimal]
    /// USD per one million requests, by architecture.
    public var requestRates: [String: Decimal]
    /// Bill a cold start's init duration (AWS since August 2025); the host applies this when metering.
    public var billInit: Bool
    /// A free tier per tenant and calendar month (nil: none).
    public var freeTier: FreeTier?
    public var currency: String

    public struct FreeTier: Sendable, Equatable, Codable {
        public var requests: Decimal
        public var gbSeconds: Decimal

        public init(requests: Decimal, gbSeconds: Decimal) {
            self.requests = requests
            self.gbSeconds = gbSeconds
        }

        /// Lambda's always-free tier: 1M requests and 400,000 GB-seconds a month.
        public static let aws = FreeTier(requests: 1_000_000, gbSeconds: 400_000)
    }

    public init(gbSecondRates: [String: Decimal], requestRates: [String: Decimal], billInit: Bool, freeTier: FreeTier?, currency: String = "USD") {
        self.gbSecondRates = gbSecondRates
        self.requestRates = requestRates
        self.billInit = billInit
        self.freeTier = freeTier
        self.currency = currency
    }

    /// AWS's public prices in us-east-1 (first tier): $0.0000166667 per GB-s on x86_64,
    /// $0.0000133334 on arm64, $0.20 per million requests; init billed; no free tier.
    public static let aws = Pricing(
        gbSecondRates: ["x86_64": Decimal(string: "0.0000166667")!, "arm64": Decimal(string: "0.0000133334")!],
        requestRates: ["x86_64": Decimal(string: "0.20")!, "arm64": Decimal(string: "0.20")!],
        billInit: true, freeTier: nil)

    func gbSecondRate(_ architecture: String) -> Decimal { gbSecondRates[architecture] ?? gbSecondRates["x86_64"] ?? 0 }
    func requestRate(_ architecture: String) -> Decimal { (requestRates[architecture] ?? requestRates["x86_64"] ?? 0) / 1_000_000 }

    /// Reads a pricing file: `{"gbSecondRates": {"x86_64": "0.0000166667"}, "requestRates": {...}, "billInit": true,
    /// "freeTier": {"requests": "1000000", "gbSeconds": "400000"}}` (amounts as strings keep them decimal).
    public static func load(path: String) throws -> Pricing {
        guard let data = FileManager.default.contents(atPath: path) else { throw PricingError("cannot read the pricing file `\(path)`") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw PricingError("the pricing file `\(path)` is not a JSON object")
        }
        func decimal(_ value: Any?, _ name: String) throws -> Decimal {
            if let text = value as? String, let number = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) { return number }
            if let number = value as? NSNumber { return Decimal(string: number.stringValue) ?? 0 }
            throw PricingError("`\(name)` in `\(path)` must be a number (a string keeps it exact)")
        }
        func rates(_ key: String, _ defaults: [String: Decimal]) throws -> [String: Decimal] {
            guard let map = object[key] as? [String: Any] else { return defaults }
            var result = defaults
            for (architecture, value) in map { result[architecture] = try decimal(value, "\(key).\(architecture)") }
            return result
        }
        var pricing = Pricing.aws
        pricing.gbSecondRates = try rates("gbSecondRates", Pricing.aws.gbSecondRates)
        pricing.requestRates = try rates("requestRates", Pricing.aws.requestRates)
        if let billInit = object["billInit"] as? Bool { pricing.billInit = billInit }
        if let free = object["freeTier"] as? [String: Any] {
            pricing.freeTier = FreeTier(requests: try decimal(free["requests"], "freeTier.requests"), gbSeconds: try decimal(free["gbSeconds"], "freeTier.gbSeconds"))
        }
        if let currency = object["currency"] as? String { pricing.currency = currency }
        return pricing
    }
}

public struct PricingError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension Decimal {
    /// Rounded to `scale` decimal places, half to even (the export says so in its README).
    func rounded(_ scale: Int, _ mode: NSDecimalNumber.RoundingMode = .bankers) -> Decimal {
        var value = self
        var result = Decimal()
        NSDecimalRound(&result, &value, scale, mode)
        return result
    }

    /// Plain text without exponent or grouping, e.g. `0.0000166667`.
    var plain: String { NSDecimalNumber(decimal: self).stringValue }

    /// Exactly `scale` decimals, e.g. `12.30`.
    func fixed(_ scale: Int) -> String {
        let text = rounded(scale).plain
        guard scale > 0 else { return text }
        let parts = text.split(separator: ".", maxSplits: 1)
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        return "\(parts[0]).\(fraction)\(String(repeating: "0", count: max(0, scale - fraction.count)))"
    }
}
