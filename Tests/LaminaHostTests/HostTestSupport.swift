#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LaminaBilling
import LaminaHost
import LaminaLayers
import LaminaRootfs
import LaminaSandbox
import Testing

let repositoryRoot: String = {
    var path = #filePath
    for _ in 0..<3 { path = (path as NSString).deletingLastPathComponent }
    return path
}()

let fixtures = "\(repositoryRoot)/Tests/Fixtures/functions"

/// The built root filesystem layers (scripts/test builds them first).
let rootfsDirectory = ProcessInfo.processInfo.environment["LAMINA_ROOTFS_DIR"] ?? "/var/cache/lamina/rootfs"

/// The static C bootstrap, compiled once per test run.
let cBootstrapDirectory: String = {
    let directory = NSTemporaryDirectory() + "lamina-cboot-\(getpid())"
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let status = shell(["/usr/bin/gcc", "-static", "-O2", "-o", "\(directory)/bootstrap", "\(repositoryRoot)/Tests/Fixtures/bootstrap.c"])
    precondition(status.status == 0, "compiling the C bootstrap failed: \(status.output)")
    return directory
}()

/// One test's own host: state directory, cgroup subtree, store, sinks and invoker.
final class TestInvoker: @unchecked Sendable {
    let state = NSTemporaryDirectory() + "lamina-host-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let cgroupParent = "lamina-host-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let sandboxes: SandboxHost
    let store: LayerStore
    let logs = InMemoryLogSink()
    let meters = InMemoryMeterSink()
    let invoker: Invoker

    init(configure: (inout InvokerConfiguration) -> Void = { _ in }) throws {
        sandboxes = try SandboxHost(configuration: SandboxHostConfiguration(stateDirectory: state, cgroupParent: cgroupParent))
        store = try LayerStore(root: state + "/layers")
        var configuration = InvokerConfiguration()
        configure(&configuration)
        invoker = Invoker(configuration: configuration, sandboxes: sandboxes, layers: store,
                          rootfs: RootfsCatalog(directory: rootfsDirectory), logSink: logs, meterSink: meters)
    }

    func function(_ name: String = "fn", runtime: String = "python3.11", handler: String = "app.handler", code: String = "python",
                  memoryMB: Int = 1024, timeout: Double = 10, environment: [String: String] = [:],
                  concurrency: ConcurrencyLimits = ConcurrencyLimits()) throws -> FunctionDefinition {
        let directory = code.hasPrefix("/") ? code : "\(fixtures)/\(code)"
        let tree = try store.importDirectory(directory, mount: .task)
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:\(name)"
        return FunctionDefinition(
            accountId: "123456789012", region: "us-east-1", name: name, functionArn: arn, version: "$LATEST",
            runtime: RuntimeCatalog.runtime(named: runtime)!, handler: handler, memoryMB: memoryMB, timeoutSeconds: timeout,
            environment: environment, code: tree, user: SandboxUser(uid: 297_000, gid: 297_000), concurrency: concurrency,
            configurationKey: "\(name)|\(tree.digest)|\(handler)|\(memoryMB)|\(timeout)|\(environment)")
    }

    func invoke(_ function: FunctionDefinition, _ event: String = "{}") async throws -> InvocationResult {
        try await invoker.invoke(function, InvocationRequest(payload: Array(event.utf8), invokedFunctionArn: function.functionArn))
    }

    /// Shuts everything down and checks that nothing is left: environments, processes, cgroups.
    func finish() async {
        await invoker.shutdown()
        await sandboxes.shutdown()
        let leftovers = ["memory", "cpu", "cpuacct", "pids", "freezer"].map { "/sys/fs/cgroup/\($0)/\(cgroupParent)" }
            .filter { FileManager.default.fileExists(atPath: $0) }
        #expect(leftovers.isEmpty, "cgroups left behind: \(leftovers)")
        try? FileManager.default.removeItem(atPath: state)
    }
}

func json(_ bytes: [UInt8]) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

struct ShellResult {
    var status: Int32
    var output: String
}

@discardableResult
func shell(_ arguments: [String], input: String? = nil) -> ShellResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let stdin = Pipe()
    if input != nil { process.standardInput = stdin }
    do { try process.run() } catch { return ShellResult(status: -1, output: "\(error)") }
    if let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try? stdin.fileHandleForWriting.close()
    }
    let output = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ShellResult(status: process.terminationStatus, output: String(decoding: output + errors, as: UTF8.self))
}

/// A REPORT line's fields.
func reportFields(_ line: String) -> [String: String] {
    var fields: [String: String] = [:]
    for part in line.split(separator: "\t") {
        let pieces = part.split(separator: ":", maxSplits: 1)
        if pieces.count == 2 { fields[pieces[0].trimmingCharacters(in: .whitespaces)] = pieces[1].trimmingCharacters(in: .whitespaces) }
    }
    return fields
}

func milliseconds(_ field: String?) -> Double { Double(field?.split(separator: " ").first ?? "") ?? -1 }
