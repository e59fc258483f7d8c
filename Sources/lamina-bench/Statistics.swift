import LaminaRuntime

/// Percentiles of a sample, nearest-rank.
struct Percentiles {
    let sorted: [Double]

    init(_ samples: [Double]) { sorted = samples.sorted() }

    func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    var p50: Double { percentile(50) }
    var p90: Double { percentile(90) }
    var p99: Double { percentile(99) }
    var mean: Double { sorted.isEmpty ? .nan : sorted.reduce(0, +) / Double(sorted.count) }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func format(_ value: Double, decimals: Int = 2) -> String {
    guard value.isFinite else { return "-" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int64((abs(value) * scale).rounded())
    let sign = value < 0 && scaled != 0 ? "-" : ""
    let whole = scaled / Int64(scale)
    let fraction = String(scaled % Int64(scale))
    return decimals == 0 ? "\(sign)\(whole)" : "\(sign)\(whole).\(String(repeating: "0", count: decimals - fraction.count))\(fraction)"
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

/// Runs `body` from `concurrency` workers, each calling it again as soon as it returns (a closed
/// loop), after `warmupPerWorker` untimed calls per worker (every worker gets its environment);
/// returns the latencies in ms and the calls per second of the timed part.
func measureClosedLoop(count: Int, concurrency: Int, warmupPerWorker: Int,
                       _ body: @escaping @Sendable () async throws -> Void) async throws -> (Percentiles, Double) {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<concurrency { group.addTask { for _ in 0..<warmupPerWorker { try await body() } } }
        try await group.waitForAll()
    }
    let perWorker = count / concurrency
    let started = uptimeNanoseconds()
    let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
        for _ in 0..<concurrency {
            group.addTask {
                var samples: [Double] = []
                samples.reserveCapacity(perWorker)
                for _ in 0..<perWorker {
                    let start = uptimeNanoseconds()
                    try await body()
                    samples.append(Double(uptimeNanoseconds() - start) / 1e6)
                }
                return samples
            }
        }
        return try await group.reduce(into: []) { $0 += $1 }
    }
    let seconds = Double(uptimeNanoseconds() - started) / 1e9
    return (Percentiles(latencies), Double(latencies.count) / seconds)
}
