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
    @Option(help: "Rounds of the three metering runs, interleaved.") var rounds = 3
    @Option(help: "State directory.") var stateDir = "/tmp/lamina-bench-ledger"
    @Option(help: "cgroup parent.") var cgroupParent = "lamina-bench-ledger"

    func run() async throws {
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)

        // 1. Raw write throughput.
        print("ledger writes ...")
        var writes: [(String, (records: Int, commits: Int, rate: Double))] = []
        for durability in StoreDurability.allCases {
            writes.append(("group commit, 64 writers, durable to \(durability.rawValue)",
                           try await writeThroughput(writers: 64, path: "\(stateDir)/grouped.db", durability: durability)))
            writes.append(("one writer (a transaction per record), durable to \(durability.rawValue)",
                           try await writeThroughput(writers: 1, path: "\(stateDir)/single.db", limit: 2000, durability: durability)))
        }

        // 2. Warm invocations with and without the ledger.
        let sandboxes = try SandboxHost(configuration: SandboxHostConfiguration(stateDirectory: stateDir, cgroupParent: cgroupParent))
        try sandboxes.warmUp()
        let layers = try LayerStore(root: "\(stateDir)/layers")
        let tree = try layers.importDirectory(cBootstrap, mount: .task)
        let powerLoss = LedgerWriter(store: try SQLiteStore(path: "\(stateDir)/metering-full.db", durability: .powerLoss))
        let processCrash = LedgerWriter(store: try SQLiteStore(path: "\(stateDir)/metering-normal.db", durability: .processCrash))
        let sinks: [(label: String, sink: any MeterSink)] = [
            ("without ledger", DiscardingMeterSink()),
            ("with ledger, durable to power-loss", powerLoss),
            ("with ledger, durable to process-crash", processCrash),
        ]
        // Rounds interleave the three, so drift on a shared machine (page-cache writeback,
        // other load) lands on all of them alike; each figure is the median over the rounds.
        var runs = [[(latency: Percentiles, rate: Double, cpu: Double)]](repeating: [], count: sinks.count)
        let function = FunctionDefinition(
            accountId: "123456789012", region: "us-east-1", name: "metered", functionArn: "arn:aws:lambda:us-east-1:123456789012:function:metered",
            version: "$LATEST", runtime: RuntimeCatalog.runtime(named: "provided")!, handler: "echo", memoryMB: 128, timeoutSeconds: 30,
            code: tree, user: SandboxUser(uid: 295_000, gid: 295_000), configurationKey: "metered")
        let event = Array("{}".utf8)
        let warmupPerWorker = 200 / concurrency
        // Calls per run, warm-up included (the CPU time covers both).
        let calls = (invocations / concurrency + warmupPerWorker) * concurrency
        for round in 1...rounds {
            for (index, (label, sink)) in sinks.enumerated() {
                print("round \(round)/\(rounds): warm invocations \(label) ...")
                let invoker = Invoker(sandboxes: sandboxes, layers: layers, rootfs: RootfsCatalog(directory: rootfsDir),
                                      logSink: DiscardingLogSink(), meterSink: sink)
                let invoke: @Sendable () async throws -> Void = {
                    _ = try await invoker.invoke(function, InvocationRequest(payload: event, invokedFunctionArn: function.functionArn))
                }
                let cpuBefore = hostCPUMicroseconds()
                let (latency, rate) = try await measureClosedLoop(count: invocations, concurrency: concurrency, warmupPerWorker: warmupPerWorker, invoke)
                runs[index].append((latency, rate, (hostCPUMicroseconds() - cpuBefore) / Double(calls)))
                await invoker.shutdown()
            }
        }
        let results = zip(sinks, runs).map { sink, runs in
            (label: sink.label, p50: median(runs.map(\.latency.p50)), p99: median(runs.map(\.latency.p99)),
             rate: median(runs.map(\.rate)), cpu: median(runs.map(\.cpu)))
        }
        await sandboxes.shutdown()

        print("")
        print("billing ledger, \(Date()), \(ProcessInfo.processInfo.activeProcessorCount) cores, SQLite WAL; power-loss = synchronous=FULL, process-crash = NORMAL")
        print("command: scripts/bench/ledger")
        print("")
        print("| ledger writes | records | transactions | records/transaction | records/s |")
        print("| --- | --- | --- | --- | --- |")
        for (label, run) in writes {
            print("| \(label) | \(run.records) | \(run.commits) | \(format(Double(run.records) / Double(max(run.commits, 1)), decimals: 1)) | \(format(run.rate, decimals: 0)) |")
        }
        print("")
        print("| warm invoke, trivial provided function, concurrency \(concurrency), median of \(rounds) rounds | p50 ms | p99 ms | invocations/s | host CPU µs/invocation |")
        print("| --- | --- | --- | --- | --- |")
        for result in results {
            print("| \(result.label) | \(format(result.p50, decimals: 3)) | \(format(result.p99, decimals: 3)) | \(format(result.rate, decimals: 0)) | \(format(result.cpu, decimals: 1)) |")
        }
        let withoutP50 = results[0].p50
        let withoutCPU = results[0].cpu
        print("")
        for (index, writer) in [(1, powerLoss), (2, processCrash)] {
            let (label, p50, _, rate, cpu) = results[index]
            let committed = writer.commitStatistics
            print("\(label): metering costs \(format(cpu - withoutCPU, decimals: 1)) µs of host CPU per invocation at \(format(rate, decimals: 0)) invocations/s (\(committed.records) records in \(committed.commits) transactions, \(format(Double(committed.records) / Double(max(committed.commits, 1)), decimals: 1)) per transaction); p50 latency +\(format(p50 - withoutP50, decimals: 3)) ms")
        }
        try? FileManager.default.removeItem(atPath: stateDir)
    }

    func writeThroughput(writers: Int, path: String, limit: Int? = nil, durability: StoreDurability) async throws -> (records: Int, commits: Int, rate: Double) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let store = try SQLiteStore(path: path, durability: durability)
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
}

/// CPU time (user + system) of this process, all threads, in µs: the host's side of an
/// invocation (the sandboxed function runs in other processes and is not counted).
func hostCPUMicroseconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
}
