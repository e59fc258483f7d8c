#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// What a FunctionName parameter names: a name, a partial ARN (`ACCOUNT:function:NAME`) or an ARN,
/// each with an optional qualifier (LAMBDA.md §3.1).
struct FunctionReference: Equatable {
    var name: String
    var qualifier: String?
    /// The account an ARN names (nil for a plain name).
    var accountId: String?
    var region: String?

    /// Parses the path parameter (already percent-decoded) and an explicit `Qualifier`.
    static func parse(_ text: String, qualifier explicit: String?) throws(APIError) -> FunctionReference {
        var reference: FunctionReference
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if text.hasPrefix("arn:") {
            // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
            guard (7...8).contains(parts.count), parts[2] == "lambda", parts[5] == "function" else {
                throw APIError.validation(value: text, field: "functionName",
                                          constraint: "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?")
            }
            reference = FunctionReference(name: parts[6], qualifier: parts.count == 8 ? parts[7] : nil, accountId: parts[4], region: parts[3])
        } else if parts.count >= 3, parts[1] == "function" {
            // ACCOUNT:function:NAME[:QUALIFIER]
            guard parts.count <= 4 else { throw APIError.invalidParameter("Invalid function name: \(text)") }
            reference = FunctionReference(name: parts[2], qualifier: parts.count == 4 ? parts[3] : nil, accountId: parts[0], region: nil)
        } else if parts.count == 2 {
            reference = FunctionReference(name: parts[0], qualifier: parts[1], accountId: nil, region: nil)
        } else {
            reference = FunctionReference(name: text, qualifier: nil, accountId: nil, region: nil)
        }
        guard Patterns.isName(reference.name, max: 64) else {
            if reference.name.count > 64 {
                throw APIError.validation(value: reference.name, field: "functionName", constraint: "Member must have length less than or equal to 64")
            }
            throw APIError.validation(value: reference.name, field: "functionName",
                                      constraint: "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?")
        }
        if let explicit, !explicit.isEmpty {
            if let derived = reference.qualifier, derived != explicit {
                throw APIError.invalidParameter("The derived qualifier from the function name does not match the specified qualifier.")
            }
            reference.qualifier = explicit
        }
        if let qualifier = reference.qualifier, !Patterns.isQualifier(qualifier) {
            throw APIError.validation(value: qualifier, field: "qualifier", constraint: "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)")
        }
        return reference
    }
}

enum ARN {
    static func function(_ region: String, _ account: String, _ name: String, qualifier: String? = nil) -> String {
        "arn:aws:lambda:\(region):\(account):function:\(name)" + (qualifier.map { ":\($0)" } ?? "")
    }

    static func layer(_ region: String, _ account: String, _ name: String) -> String {
        "arn:aws:lambda:\(region):\(account):layer:\(name)"
    }

    static func layerVersion(_ region: String, _ account: String, _ name: String, _ version: Int) -> String {
        "\(layer(region, account, name)):\(version)"
    }

    /// Parses `arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION`.
    static func parseLayerVersion(_ arn: String) -> (region: String, account: String, name: String, version: Int)? {
        let parts = arn.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 8, parts[0] == "arn", parts[2] == "lambda", parts[5] == "layer", let version = Int(parts[7]) else { return nil }
        return (parts[3], parts[4], parts[6], version)
    }
}

/// Lambda's timestamp format: `2020-04-10T19:06:32.563+0000`.
func lambdaTimestamp(_ date: Date) -> String {
    var seconds = time_t(date.timeIntervalSince1970)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    let millis = Int((date.timeIntervalSince1970 - Double(seconds)) * 1000)
    func pad(_ value: Int32, _ width: Int = 2) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday))T\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec)).\(pad(Int32(millis), 3))+0000"
}
