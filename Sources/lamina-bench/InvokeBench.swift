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
import NIOCore
import NIOPosix

/// Cold starts, warm latency and throughput through `Invoker.invoke` in process, beside the same
/// runtime and handler talking to the same Runtime API with no sandbox at all.
struct InvokeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "invoke", abstract: "Benchmark invocations through LaminaHost.")

    @Option(help: "Directory with the C bootstrap (a provided runtime).") var cBootstrap: String
    @Option(help: "Directory with a trivial Python handler (app.handler returns the event).") var pythonCode: String
    @Option(help: "Built root filesystem layers.") var rootfsDir: String
    @Option(help: "Cold starts per runtime.") var coldRuns = 30
    @Option(help: "Warm invocations per concurrency level.") var warmRuns = 3000
    @Option(help: "Memory of the benchmark functions, MB (1769 = one vCPU).") var memory = 1769
    @Option(help: "State directory.") var stateDir = "/tmp/lamina-bench-invoke"
    @Option(help: "cgroup parent.") var cgroupParent = "lamina-bench-invoke"

    struct Row {
        var name: String
        var values: [String]
    }

    func run() async throws {
        let sandboxes = try SandboxHost(configuration: SandboxHostConfiguration(stateDirectory: stateDir, cgroupParent: cgroupParent))
        try sandboxes.warmUp()
        let store = try LayerStore(root: stateDir + "/layers")
        let meters = CountingMeterSink()
        let invoker = Invoker(sandboxes: sandboxes, layers: store, rootfs: RootfsCatalog(directory: rootfsDir),
                              logSink: DiscardingLogSink(), meterSink: meters)
        let cTree = try store.importDirectory(cBootstrap, mount: .task)
        let pythonTree = try store.importDirectory(pythonCode, mount: .task)
        func function(_ name: String, _ runtime: String, _ handler: String, _ tree: Tree) -> FunctionDefinition {
            FunctionDefinition(accountId: "123456789012", region: "us-east-1", name: name,
                               functionArn: "arn:aws:lambda:us-east-1:123456789012:function:\(name)", version: "$LATEST",
                               runtime: RuntimeCatalog.runtime(named: runtime)!, handler: handler, memoryMB: memory, timeoutSeconds: 30,
                               code: tree, user: SandboxUser(uid: 296_000, gid: 296_000), configurationKey: name)
        }
        let provided = function("bench-provided", "provided", "echo", cTree)
        let python = function("bench-python", "python3.11", "app.handler", pythonTree)
        let event = Array(#"{"hello":"world"}"#.utf8)

        print("cold starts (\(coldRuns) each) ...")
        var cold: [String: (spawnToNext: Percentiles, endToEnd: Percentiles)] = [:]
        for definition in [provided, python] {
            var toNext: [Double] = [], total: [Double] = []
            for _ in 0..<coldRuns {
                let started = uptimeNanoseconds()
                let result = try await invoker.invoke(definition, InvocationRequest(payload: event, invokedFunctionArn: definition.functionArn))
                total.append(Double(uptimeNanoseconds() - started) / 1e6)
                guard result.coldStart, result.functionError == nil else { throw ValidationError("unexpected result: \(String(decoding: result.payload, as: UTF8.self))") }
                toNext.append(Double(result.meter.initMicros) / 1000)
                await invoker.destroyIdleEnvironments()
            }
            cold[definition.runtime.name] = (Percentiles(toNext), Percentiles(total))
        }

        var warm: [String: [Int: (Percentiles, Double)]] = [:]
        var bare: [String: [Int: (Percentiles, Double)]] = [:]
        for definition in [provided, python] {
            for concurrency in [1, 2, 8] {
                print("warm \(definition.runtime.name), concurrency \(concurrency) ...")
                warm[definition.runtime.name, default: [:]][concurrency] = try await measureClosedLoop(count: warmRuns, concurrency: concurrency, warmupPerWorker: 20) {
                    let result = try await invoker.invoke(definition, InvocationRequest(payload: event, invokedFunctionArn: definition.functionArn))
                    guard result.functionError == nil else { throw ValidationError("function error") }
                }
            }
        }
        await invoker.shutdown()
        await sandboxes.shutdown()

        // The same runtimes, unsandboxed: plain host processes on a host socket, same Runtime API.
        let pythonLayer = RootfsCatalog(directory: rootfsDir).layer(named: "python3.11")!.path
        for (name, command, environment, directory) in [
            ("provided", ["\(cTree.path)/var/task/bootstrap"], ["_HANDLER": "echo"], "\(cTree.path)/var/task"),
            ("python3.11", ["/usr/bin/python3", "-m", "awslambdaric", "app.handler"],
             ["_HANDLER": "app.handler", "PYTHONPATH": "\(pythonLayer)/var/runtime", "AWS_LAMBDA_FUNCTION_NAME": "bench",
              "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
              "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench", "AWS_LAMBDA_LOG_STREAM_NAME": "bench"], "\(pythonTree.path)/var/task"),
        ] {
            for concurrency in [1, 2, 8] {
                print("unsandboxed \(name), concurrency \(concurrency) ...")
                let pool = try await UnsandboxedPool(size: concurrency, command: command, environment: environment, directory: directory)
                bare[name, default: [:]][concurrency] = try await measureClosedLoop(count: warmRuns, concurrency: concurrency, warmupPerWorker: 20) {
                    try await pool.invoke(event)
                }
                pool.stop()
            }
        }

        printTable(cold: cold, warm: warm, bare: bare)
        print("ledger records written: \(meters.count)")
    }

    /// Runs `warmRuns` invocations with `concurrency` in flight; latency percentiles (ms) and throughput (per second).

    func printTable(cold: [String: (spawnToNext: Percentiles, endToEnd: Percentiles)], warm: [String: [Int: (Percentiles, Double)]],
                    bare: [String: [Int: (Percentiles, Double)]]) {
        let runtimes = ["provided", "python3.11"]
        print("")
        print("invocations through LaminaHost in process, \(memory) MB functions, \(Date()), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("command: scripts/bench/invoke")
        print("")
        print("| cold start (ms) | provided (C bootstrap) | python3.11 (awslambdaric) |")
        print("| --- | --- | --- |")
        print("| spawn -> runtime at /next, p50 / p90 | " + runtimes.map { "\(format(cold[$0]!.spawnToNext.p50)) / \(format(cold[$0]!.spawnToNext.p90))" }.joined(separator: " | ") + " |")
        print("| cold invocation end to end, p50 / p90 | " + runtimes.map { "\(format(cold[$0]!.endToEnd.p50)) / \(format(cold[$0]!.endToEnd.p90))" }.joined(separator: " | ") + " |")
        print("")
        print("| warm, trivial handler | concurrency | sandboxed p50 / p99 ms | no sandbox p50 / p99 ms | isolation cost p50 ms | sandboxed / no sandbox per second |")
        print("| --- | --- | --- | --- | --- | --- |")
        for runtime in runtimes {
            for concurrency in [1, 2, 8] {
                let (w, wRate) = warm[runtime]![concurrency]!
                let (b, bRate) = bare[runtime]![concurrency]!
                print("| \(runtime) | \(concurrency) | \(format(w.p50, decimals: 3)) / \(format(w.p99, decimals: 3)) | \(format(b.p50, decimals: 3)) / \(format(b.p99, decimals: 3)) | \(format(w.p50 - b.p50, decimals: 3)) | \(format(wRate, decimals: 0)) / \(format(bRate, decimals: 0)) |")
            }
        }
    }
}

final class CountingMeterSink: MeterSink, @unchecked Sendable {
    private let lock = NSLock()
    private var total = 0
    func record(_ record: MeterRecord) async throws { lock.withLock { total += 1 } }
    var count: Int { lock.withLock { total } }
}

struct DiscardingLogSink: LogSink {
    func write(_ events: [LogEvent], account: String, group: String, stream: String) {}
}

/// Runtime processes on the host, each with its own Runtime API session on a host loopback port:
/// what a runtime costs without any isolation.
final class UnsandboxedPool: @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, System.coreCount))
    var sessions: [RuntimeSession] = []
    var processes: [Process] = []
    var servers: [RuntimeAPIServer] = []
    private let lock = NSLock()
    private var free: [RuntimeSession] = []
    private var counter = 0

    init(size: Int, command: [String], environment: [String: String], directory: String) async throws {
        for _ in 0..<size {
            let (fd, port) = try Self.listen()
            let server = try await RuntimeAPIServer.start(adopting: fd, on: group.next()).get()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
            var variables = environment
            variables["AWS_LAMBDA_RUNTIME_API"] = "127.0.0.1:\(port)"
            variables["PATH"] = "/usr/bin:/bin"
            process.environment = variables
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            guard case .ready = try await server.session.initialization(timeout: .seconds(30)).get() else {
                throw ValidationError("the unsandboxed runtime did not start")
            }
            servers.append(server)
            processes.append(process)
            free.append(server.session)
        }
    }

    func invoke(_ event: [UInt8]) async throws {
        let session: RuntimeSession = lock.withLock {
            counter += 1
            return free.popLast()!
        }
        defer { lock.withLock { free.append(session) } }
        let id = "bench-\(counter)-\(UInt32.random(in: 0...UInt32.max))"
        let outcome = try await session.invoke(RuntimeInvocation(
            requestId: id, payload: ByteBuffer(bytes: event), timeoutNs: 30_000_000_000,
            invokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:bench", traceId: "Root=1-0-0")).get()
        guard case .response = outcome else { throw ValidationError("unsandboxed invocation failed") }
    }

    func stop() {
        for process in processes { process.terminate() }
        for server in servers { server.close() }
        try? group.syncShutdownGracefully()
    }

    static func listen() throws -> (Int32, UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        Glibc.listen(fd, 64)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return (fd, UInt16(bigEndian: address.sin_port))
    }
}
