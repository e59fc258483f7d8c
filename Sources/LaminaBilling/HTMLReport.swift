import Foundation

/// A one-page billing report: cost and average duration over time per tenant, as inline SVG line
/// charts, and the table of tenants and functions. Self-contained: no script, font or image is
/// fetched from anywhere.
public enum HTMLReport {
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]

    /// `byTenant` must be grouped by tenant over time; `byFunction` by function over the whole range.
    public static func render(byTenant: BillingReport, byFunction: BillingReport, tenantNames: [String: String], title: String) -> String {
        // Every period of the range, so quiet hours or days show as zero, not as gaps.
        var periods: [Int64] = []
        var cursor = UTC.period(byTenant.grouping.period, containing: byTenant.fromMs).0
        while cursor < byTenant.toMs && periods.count < 400 {
            periods.append(cursor)
            cursor = UTC.period(byTenant.grouping.period, containing: cursor).1
        }
        let tenants = Array(Set(byTenant.groups.map(\.accountId))).sorted()
        func series(_ value: (UsageGroup) -> Double) -> [(String, [Double])] {
            tenants.map { tenant in
                let points = periods.map { period in
                    byTenant.groups.filter { $0.accountId == tenant && $0.periodStartMs == period }.reduce(0.0) { $0 + value($1) }
                }
                return (tenantNames[tenant] ?? tenant, points)
            }
        }
        let cost = series { NSDecimalNumber(decimal: $0.cost).doubleValue }
        let duration = tenants.map { tenant -> (String, [Double]) in
            let points = periods.map { period -> Double in
                let groups = byTenant.groups.filter { $0.accountId == tenant && $0.periodStartMs == period }
                let requests = groups.reduce(0) { $0 + $1.requests }
                return requests == 0 ? 0 : Double(groups.reduce(0) { $0 + $1.durationMicros }) / 1000 / Double(requests)
            }
            return (tenantNames[tenant] ?? tenant, points)
        }
        let labels = periods.map { UTC.iso($0).replacingOccurrences(of: ":00:00Z", with: "h").replacingOccurrences(of: "T00h", with: "") }

        var rows = ""
        for group in byFunction.groups {
            rows += "<tr><td>\(escape(tenantNames[group.accountId] ?? group.accountId))</td><td>\(escape(group.functionName))</td>"
                + "<td class=n>\(group.requests)</td><td class=n>\(group.gbSeconds.fixed(3))</td>"
                + "<td class=n>\(fixed2(Double(group.durationMicros) / 1000 / Double(max(group.requests, 1))))</td>"
                + "<td class=n>\(group.cost.fixed(2))</td></tr>\n"
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <style>
            body{font:14px/1.4 -apple-system,system-ui,sans-serif;margin:24px;color:#222;background:#fff}
            h1{font-size:20px;margin:0 0 4px} p.sub{color:#666;margin:0 0 16px}
            .charts{display:flex;flex-wrap:wrap;gap:24px} figure{margin:0} figcaption{font-weight:600;margin-bottom:4px}
            table{border-collapse:collapse;margin-top:24px} th,td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}
            td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
            </style></head><body>
            <h1>\(escape(title))</h1>
            <p class=sub>\(UTC.iso(byTenant.fromMs)) to \(UTC.iso(byTenant.toMs)) · \(byFunction.totalRequests) requests · \(byFunction.totalGBSeconds.fixed(3)) GB-seconds · total \(byFunction.pricing.currency) \(byFunction.totalCost.fixed(2))</p>
            <div class=charts>
            <figure><figcaption>Cost per \(byTenant.grouping.period.rawValue) by tenant (\(byFunction.pricing.currency))</figcaption>\(chart(series: cost, labels: labels, id: "cost-chart"))</figure>
            <figure><figcaption>Average duration per \(byTenant.grouping.period.rawValue) by tenant (ms)</figcaption>\(chart(series: duration, labels: labels, id: "duration-chart"))</figure>
            </div>
            <table><thead><tr><th>Tenant</th><th>Function</th><th class=n>Requests</th><th class=n>GB-seconds</th><th class=n>Avg duration ms</th><th class=n>Cost</th></tr></thead>
            <tbody>
            \(rows)</tbody></table>
            </body></html>

            """
    }

    /// A line chart with axes, a legend and one polyline per series.
    static func chart(series: [(String, [Double])], labels: [String], id: String) -> String {
        let width = 560.0, height = 280.0, left = 60.0, right = 16.0, top = 16.0, bottom = 48.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let maximum = max(series.flatMap(\.1).max() ?? 0, 1e-12) * 1.1
        let count = max(labels.count, 1)
        func x(_ index: Int) -> Double { left + (count == 1 ? plotWidth / 2 : plotWidth * Double(index) / Double(count - 1)) }
        func y(_ value: Double) -> Double { top + plotHeight - plotHeight * value / maximum }
        var svg = "<svg id=\"\(id)\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"#fafafa\"/>"
        for step in 0...4 {
            let value = maximum * Double(step) / 4
            svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(fixed2(y(value)))\" y2=\"\(fixed2(y(value)))\" stroke=\"#e3e3e3\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(fixed2(y(value) + 4))\" font-size=\"10\" text-anchor=\"end\" fill=\"#666\">\(short(value))</text>"
        }
        svg += "<line x1=\"\(left)\" x2=\"\(left)\" y1=\"\(top)\" y2=\"\(top + plotHeight)\" stroke=\"#999\"/>"
        svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(top + plotHeight)\" y2=\"\(top + plotHeight)\" stroke=\"#999\"/>"
        let every = max(1, labels.count / 6)
        for (index, label) in labels.enumerated() where index % every == 0 {
            svg += "<text x=\"\(fixed2(x(index)))\" y=\"\(top + plotHeight + 14)\" font-size=\"10\" text-anchor=\"middle\" fill=\"#666\">\(escape(label))</text>"
        }
        for (index, (name, points)) in series.enumerated() {
            let color = colors[index % colors.count]
            let path = points.enumerated().map { "\(fixed2(x($0.offset))),\(fixed2(y($0.element)))" }.joined(separator: " ")
            svg += "<polyline class=\"series\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"3\" points=\"\(path)\"/>"
            for (pointIndex, value) in points.enumerated() {
                svg += "<circle cx=\"\(fixed2(x(pointIndex)))\" cy=\"\(fixed2(y(value)))\" r=\"3.5\" fill=\"\(color)\"/>"
            }
            let legendX = left + Double(index % 4) * 120
            let legendY = height - 12 - Double(index / 4) * 0
            svg += "<rect x=\"\(legendX)\" y=\"\(legendY - 9)\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(legendX + 14)\" y=\"\(legendY)\" font-size=\"11\" fill=\"#333\">\(escape(name))</text>"
        }
        return svg + "</svg>"
    }

    static func short(_ value: Double) -> String {
        if value == 0 { return "0" }
        if value >= 100 { return String(Int(value.rounded())) }
        if value >= 1 { return fixed2(value) }
        let decimals = max(2, Int(-log10(value).rounded(.up)) + 2)
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        return String((value * scale).rounded() / scale)
    }

    static func fixed2(_ value: Double) -> String {
        let scaled = Int64((value * 100).rounded())
        let fraction = abs(scaled % 100)
        return "\(scaled / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
