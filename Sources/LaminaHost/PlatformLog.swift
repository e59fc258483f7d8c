#if canImport(Glibc)
import Glibc
#endif

/// The lines Lambda itself writes into a function's log stream (LAMBDA.md §5.1), tab-separated as on
/// Lambda.
public enum PlatformLog {
    public static func start(requestId: String, version: String) -> String {
        "START RequestId: \(requestId) Version: \(version)"
    }

    public static func end(requestId: String) -> String { "END RequestId: \(requestId)" }

    /// `REPORT RequestId: …\tDuration: 1.27 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 36 MB\t`
    /// with `Init Duration` after `Max Memory Used` on a cold start, then `Status` and `Error Type`
    /// for platform faults.
    public static func report(_ report: InvocationReport) -> String {
        var line = "REPORT RequestId: \(report.requestId)\tDuration: \(fixed(Double(report.durationMicros) / 1000, 2)) ms\t"
            + "Billed Duration: \(report.billedMs) ms\tMemory Size: \(report.memoryMB) MB\tMax Memory Used: \(report.maxMemoryUsedMB) MB\t"
        if let initMicros = report.initMicros { line += "Init Duration: \(fixed(Double(initMicros) / 1000, 2)) ms\t" }
        if let status = report.status { line += "Status: \(status)\t" }
        if let errorType = report.errorType { line += "Error Type: \(errorType)\t" }
        return line
    }

    /// `INIT_START Runtime Version: python:3.11.v1\tRuntime Version ARN: arn:aws:lambda:REGION::runtime:HEX`
    public static func initStart(runtimeVersion: String, region: String, runtimeDigest: String) -> String {
        "INIT_START Runtime Version: \(runtimeVersion)\tRuntime Version ARN: arn:aws:lambda:\(region)::runtime:\(runtimeDigest)"
    }

    /// `INIT_REPORT Init Duration: 150.79 ms\tPhase: init\tStatus: error\tError Type: Runtime.UserCodeSyntaxError`
    public static func initReport(initMicros: Int64, phase: String, status: String, errorType: String?) -> String {
        var line = "INIT_REPORT Init Duration: \(fixed(Double(initMicros) / 1000, 2)) ms\tPhase: \(phase)\tStatus: \(status)"
        if let errorType { line += "\tError Type: \(errorType)" }
        return line
    }

    /// `2024-01-02T03:04:05.678Z <id> Task timed out after 3.00 seconds`
    public static func timeout(requestId: String, seconds: Double, at epochMs: Int64) -> String {
        "\(iso8601(epochMs)) \(requestId) Task timed out after \(fixed(seconds, 2)) seconds"
    }

    /// Lambda's log stream name: `YYYY/MM/DD/[VERSION]<32 hex environment id>`.
    public static func streamName(version: String, environmentId: String, epochMs: Int64) -> String {
        let date = utcComponents(epochMs)
        return "\(date.year)/\(two(date.month))/\(two(date.day))/[\(version)]\(environmentId)"
    }

    static func iso8601(_ epochMs: Int64) -> String {
        let c = utcComponents(epochMs)
        let ms = String(epochMs % 1000)
        return "\(c.year)-\(two(c.month))-\(two(c.day))T\(two(c.hour)):\(two(c.minute)):\(two(c.second)).\(String(repeating: "0", count: 3 - ms.count))\(ms)Z"
    }

    static func utcComponents(_ epochMs: Int64) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        var seconds = time_t(epochMs / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return (Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    static func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
}

/// `value` with exactly `decimals` decimals (half up), without Foundation.
public func fixed(_ value: Double, _ decimals: Int) -> String {
    var scale: Int64 = 1
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int64((value * Double(scale)).rounded())
    let whole = scaled / scale
    let fraction = String(scaled % scale)
    if decimals == 0 { return String(whole) }
    return "\(whole).\(String(repeating: "0", count: decimals - fraction.count))\(fraction)"
}
