#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import LaminaCommandLine
import Foundation
import LaminaBilling
import LaminaHost
import LaminaLayers
import LaminaRootfs
import LaminaSandbox

/// `lamina run`: one invocation of a function from local directories, like `sam local invoke`.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Invoke a function once from a local directory: the response on stdout, its log on stderr.",
        discussion: "Exits 0 when the function succeeded and 1 when it failed (X-Amz-Function-Error)."
    )

    @OptionGroup var host: HostOptions
    @OptionGroup var rootfs: RootfsOptions

    @Option(help: "Runtime: \(RuntimeCatalog.all.keys.sorted().joined(separator: ", ")).")
    var runtime: String

    @Option(help: "Handler, e.g. app.handler (free-form for provided runtimes).")
    var handler: String = "handler"

    @Option(help: "Directory with the function's code (it becomes /var/task).")
    var code: String

    @Option(name: .customLong("layer"), help: "Directory with a layer's content (merged at /opt; repeatable, later wins).")
    var layers: [String] = []

    @Option(help: "Memory in MB (128-10240); the CPU share follows it.")
    var memory: Int = 128

    @Option(help: "Timeout in seconds (1-900).")
    var timeout: Double = 3

    @Option(help: "The event: a file, or - for stdin (default: {}).")
    var event: String?

    @Option(name: .customLong("env"), help: "An environment variable of the function, K=V (repeatable).")
    var environment: [String] = []

    @Option(help: "The function's name.")
    var functionName: String = "function"

    @Option(help: "The region in ARNs and AWS_REGION.")
    var region: String = "us-east-1"

    func validate() throws {
        guard RuntimeCatalog.runtime(named: runtime) != nil else {
            throw ValidationError("unknown runtime `\(runtime)`: use one of \(RuntimeCatalog.all.keys.sorted().joined(separator: ", "))")
        }
        guard ResourceLimits.memoryRangeMB.contains(memory) else { throw ValidationError("--memory must be 128 to 10240 MB") }
        guard timeout >= 1 && timeout <= 900 else { throw ValidationError("--timeout must be 1 to 900 seconds") }
        guard FileManager.default.fileExists(atPath: code) else { throw ValidationError("--code directory `\(code)` does not exist") }
        for layer in layers where !FileManager.default.fileExists(atPath: layer) {
            throw ValidationError("--layer directory `\(layer)` does not exist")
        }
        guard layers.count <= 5 else { throw ValidationError("Cannot reference more than 5 layers.") }
        for entry in environment where !entry.contains("=") { throw ValidationError("--env `\(entry)` must look like KEY=VALUE") }
    }

    func run() async throws {
        bootstrapLogging(verbose: host.verbose)
        let payload = try readEvent()
        let sandboxes: SandboxHost
        let store: LayerStore
        do {
            sandboxes = try SandboxHost(configuration: SandboxHostConfiguration(stateDirectory: host.stateDir, cgroupParent: host.cgroupParent))
            store = try LayerStore(root: host.stateDir + "/layers")
        } catch {
            throw CommandFailure(description: "\(error)", status: 125)
        }
        let lease: UIDLease
        do { lease = try UIDLease.acquire(directory: host.stateDir + "/uids") } catch {
            throw CommandFailure(description: error.description, status: 125)
        }
        let codeTree: Tree
        var layerTrees: [Tree] = []
        do {
            codeTree = try store.importDirectory(absolute(code), mount: .task)
            for layer in layers { layerTrees.append(try store.importDirectory(absolute(layer), mount: .opt)) }
        } catch {
            throw UsageError(error.description)
        }
        var variables: [String: String] = [:]
        for entry in environment {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            variables[String(parts[0])] = String(parts[1])
        }
        let arn = "arn:aws:lambda:\(region):000000000000:function:\(functionName)"
        let function = FunctionDefinition(
            accountId: "000000000000", region: region, name: functionName, functionArn: arn, version: "$LATEST",
            runtime: RuntimeCatalog.runtime(named: runtime)!, handler: handler, memoryMB: memory, timeoutSeconds: timeout,
            environment: variables, code: codeTree, layers: layerTrees, user: lease.user,
            configurationKey: "\(codeTree.digest)|\(layerTrees.map(\.digest))")
        let invoker = Invoker(sandboxes: sandboxes, layers: store, rootfs: RootfsCatalog(directory: rootfs.directory(stateDirectory: host.stateDir)),
                              logSink: FileDescriptorLogSink(fd: 2), meterSink: InMemoryMeterSink())
        let result: InvocationResult
        do {
            result = try await invoker.invoke(function, InvocationRequest(payload: payload, invokedFunctionArn: arn))
        } catch {
            await invoker.shutdown()
            await sandboxes.shutdown()
            throw CommandFailure(description: error.description, status: 125)
        }
        await invoker.shutdown()
        await sandboxes.shutdown()
        withExtendedLifetime(lease) {}
        FileHandle.standardOutput.write(Data(result.payload))
        if result.payload.last != UInt8(ascii: "\n") { FileHandle.standardOutput.write(Data("\n".utf8)) }
        if result.functionError != nil { throw ExitCode(1) }
    }

    func readEvent() throws -> [UInt8] {
        guard let event else { return Array("{}".utf8) }
        if event == "-" { return Array(FileHandle.standardInput.readDataToEndOfFile()) }
        guard let data = FileManager.default.contents(atPath: event) else { throw UsageError("cannot read the event file `\(event)`") }
        return Array(data)
    }

    func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}
