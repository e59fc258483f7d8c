#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import LaminaBilling
import LaminaHost
import LaminaLayers
import LaminaRootfs
import LaminaRuntime
import LaminaSandbox
import LaminaStore

/// The ledger's write throughput with group commit (and without, one transaction per record), and
/// what metering into it costs on the warm invoke path, in one run.
struct LedgerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ledger", abstract: "Benchmark the billing ledger.")

    @Option(help: "Directory with the C bootstrap (a provided runtime).") var cBootstrap: String
    @Option(help: "Built root filesystem layers.") var rootfsDir: String
    @Option(help: "Records per write-throughput run.") var records = 20_000
    @Option(help: "Warm invocations per metering run.") var invocations = 20_000
    @Option(help: "Invocations in flight.") var concurrency = 8
    @Option(help: "State directory.") var stateDir = "/tmp/lamina-bench-ledger"
    @Option(help: "cgroup parent.") var cgroupParent = "lamina-bench-ledger"

    func run() async throws {
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)

        // 1. Raw write throughput.
        print("ledger writes ...")
        let grouped = try await writeThroughput(writers: 64, path: "\(stateDir)/grouped.db")
        let single = try await writeThroughput(writers: 1, path: "\(stateDir)/single.db", limit: 2000)

        // 2. Warm invocations with and without the ledger.
        let sandboxes = try SandboxHost(configuration: SandboxHostConfiguration(stateDirectory: stateDir, cgroupParent: cgroupParent))
        try sandboxes.warmUp()
        let layers = try LayerStore(root: "\(stateDir)/layers")
        let tree = try layers.importDirectory(cBootstrap, mount: .task)
        let store = try SQLiteStore(path: "\(stateDir)/metering.db")
        let ledger = LedgerWriter(store: store)
        var results: [(String, Percentiles, Double)] = []
        for (label, sink) in [("without ledger", DiscardingMeterSink() as any MeterSink), ("with ledger (group commit)", ledger as any MeterSink),
                              ("without ledger, again", DiscardingMeterSink() as any MeterSink)] {
            print("warm invocations \(label) ...")
            let invoker = Invoker(sandboxes: sandboxes, layers: layers, rootfs: RootfsCatalog(directory: rootfsDir),
                                  logSink: NullLogSink(), meterSink: sink)
            let function = FunctionDefinition(
                accountId: "123456789012", region: "us-east-1", name: "metered", functionArn: "arn:aws:lambda:us-east-1:123456789012:function:metered",
                version: "$LATEST", runtime: RuntimeCatalog.runtime(named: "provided")!, handler: "echo", memoryMB: 1769, timeoutSeconds: 30,
                code: tree, user: SandboxUser(uid: 295_000, gid: 295_000), configurationKey: "metered")
            let event = Array("{}".utf8)
            let invoke: @Sendable () async throws -> Void = {
                _ = try await invoker.invoke(function, InvocationRequest(payload: event, invokedFunctionArn: function.functionArn))
            }
            let (latency, rate) = try await measure(count: invocations, concurrency: concurrency, warmup: 200, invoke)
            results.append((label, latency, rate))
            await invoker.shutdown()
        }
        await sandboxes.shutdown()
        let committed = ledger.commitStatistics

        print("")
        print("billing ledger, \(Date()), \(ProcessInfo.processInfo.activeProcessorCount) cores, SQLite WAL with synchronous=FULL")
        print("command: scripts/bench/ledger")
        print("")
        print("| ledger writes | records | transactions | records/transaction | records/s |")
        print("| --- | --- | --- | --- | --- |")
        print("| group commit, 64 writers | \(grouped.records) | \(grouped.commits) | \(format(Double(grouped.records) / Double(max(grouped.commits, 1)), decimals: 1)) | \(format(grouped.rate, decimals: 0)) |")
        print("| one writer (a transaction per record) | \(single.records) | \(single.commits) | 1.0 | \(format(single.rate, decimals: 0)) |")
        print("")
        print("| warm invoke, trivial provided function, concurrency \(concurrency) | p50 ms | p99 ms | invocations/s |")
        print("| --- | --- | --- | --- |")
        for (label, latency, rate) in results {
            print("| \(label) | \(format(latency.p50, decimals: 3)) | \(format(latency.p99, decimals: 3)) | \(format(rate, decimals: 0)) |")
        }
        let without = (results[0].2 + results[2].2) / 2
        let with = results[1].2
        let perInvocation = (1 / with - 1 / without) * 1e6
        print("")
        print("metering into the ledger costs \(format(perInvocation, decimals: 1)) µs per invocation of throughput at \(format(with, decimals: 0)) invocations/s (\(committed.records) records in \(committed.commits) transactions, \(format(Double(committed.records) / Double(max(committed.commits, 1)), decimals: 1)) per transaction); p50 latency +\(format(results[1].1.p50 - (results[0].1.p50 + results[2].1.p50) / 2, decimals: 3)) ms")
        try? FileManager.default.removeItem(atPath: stateDir)
    }

    func writeThroughput(writers: Int, path: String, limit: Int? = nil) async throws -> (records: Int, commits: Int, rate: Double) {
        try? FileManager.default.removeItem(atPath: path)
        let store = try SQLiteStore(path: path)
        let writer = LedgerWriter(store: store)
        let total = min(records, limit ?? records)
        let perWriter = total / writers
        let started = uptimeNanoseconds()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<writers {
                group.addTask {
                    for index in 0..<perWriter {
                        try await writer.record(MeterRecord(
                            requestId: "w\(w)-\(index)", accountId: "123456789012", functionArn: "arn:aws:lambda:us-east-1:123456789012:function:f",
                            functionName: "f", executedVersion: "$LATEST", architecture: "x86_64", startTimeMs: 1_795_651_200_000 + Int64(index),
                            durationMicros: 1234, billedMs: 2, memoryMB: 128, initMicros: 0, initBilled: false, maxMemoryUsedMB: 20,
                            cpuMicros: 100, outcome: .success))
                    }
                }
            }
            try await group.waitForAll()
        }
        let seconds = Double(uptimeNanoseconds() - started) / 1e9
        let statistics = writer.commitStatistics
        return (statistics.records, statistics.commits, Double(statistics.records) / seconds)
    }

    func measure(count: Int, concurrency: Int, warmup: Int, _ body: @escaping @Sendable () async throws -> Void) async throws -> (Percentiles, Double) {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency { group.addTask { for _ in 0..<(warmup / concurrency) { try await body() } } }
            try await group.waitForAll()
        }
        let perWorker = count / concurrency
        let started = uptimeNanoseconds()
        let samples = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var samples: [Double] = []
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
        return (Percentiles(samples), Double(samples.count) / (Double(uptimeNanoseconds() - started) / 1e9))
    }
}

struct NullLogSink: LogSink {
    func write(_ events: [LogEvent], account: String, group: String, stream: String) {}
}
