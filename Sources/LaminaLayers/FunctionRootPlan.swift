#if canImport(Glibc)
import Glibc
#endif

/// The root filesystem and start-up of one function version's execution environment: one overlay
/// of read-only lower directories (top first) and the variables of Lambda's runtime contract.
///
/// Top to bottom: the function's code (at /var/task), its layers merged at /opt with a later
/// layer winning a name clash, the sandbox user's identity (/etc/passwd), the runtime layer, and
/// the base system.
public struct FunctionRootPlan: Sendable, Equatable {
    public var lowerLayers: [String]
    public var environment: [String: String]
    /// argv of the runtime: its bootstrap.
    public var bootstrap: [String]
    public var workingDirectory: String
    public var unpackedBytes: Int64

    /// Lambda's limit for a function's code and layers together, unzipped.
    public static let maxUnpackedBytes: Int64 = 262_144_000
    public static let maxLayers = 5

    /// Where built root filesystem layers are found: rootfs name -> lower directory.
    public typealias RootfsResolver = (String) -> String?

    public static func make(runtime: RuntimeDescriptor, handler: String, code: Tree, layers: [Tree],
                            identity: String?, rootfs: RootfsResolver) throws(LayerError) -> FunctionRootPlan {
        guard code.mount == .task else { throw .invalidPlan("the function's code must be a /var/task tree") }
        guard layers.allSatisfy({ $0.mount == .opt }) else { throw .invalidPlan("layers must be /opt trees") }
        guard layers.count <= maxLayers else { throw .invalidPlan("Cannot reference more than \(maxLayers) layers.") }
        let unpacked = code.summary.unpackedBytes + layers.reduce(0) { $0 + $1.summary.unpackedBytes }
        guard unpacked <= maxUnpackedBytes else {
            throw .tooLarge("Function code combined with layers exceeds the maximum allowed size of \(maxUnpackedBytes) bytes. The actual size is \(unpacked) bytes.")
        }
        var runtimeLayers: [String] = []
        for name in runtime.rootfsLayers {
            guard let path = rootfs(name) else {
                throw .notFound("the root filesystem layer `\(name)` for runtime \(runtime.name) is not built: run `lamina rootfs build \(name)`")
            }
            runtimeLayers.append(path)
        }
        // A later layer wins: overlayfs puts the leftmost lower directory on top.
        let lower = [code.path] + layers.reversed().map(\.path) + (identity.map { [$0] } ?? []) + runtimeLayers

        let bootstrap = try resolveBootstrap(runtime: runtime, code: code, layers: layers, runtimeLayers: runtimeLayers)
        return FunctionRootPlan(lowerLayers: lower, environment: environment(runtime: runtime, handler: handler),
                                bootstrap: [bootstrap], workingDirectory: "/var/task", unpackedBytes: unpacked)
    }

    /// The runtime contract's variables that come from the function's code and runtime (LAMBDA.md 1.8);
    /// the host adds the invocation-related ones (function name, memory, Runtime API, ...).
    public static func environment(runtime: RuntimeDescriptor, handler: String) -> [String: String] {
        var variables = [
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": "/var/task",
            "LAMBDA_RUNTIME_DIR": "/var/runtime",
            "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
            "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
        ]
        if let executionEnvironment = runtime.executionEnvironment { variables["AWS_EXECUTION_ENV"] = executionEnvironment }
        variables.merge(runtime.environment) { _, new in new }
        return variables
    }

    /// Lambda's bootstrap lookup, done on the host against the trees the overlay will merge.
    static func resolveBootstrap(runtime: RuntimeDescriptor, code: Tree, layers: [Tree], runtimeLayers: [String]) throws(LayerError) -> String {
        let searched = [code.path] + layers.reversed().map(\.path) + runtimeLayers
        for candidate in runtime.bootstrapCandidates {
            for lower in searched {
                var st = stat()
                guard lstat(lower + candidate, &st) == 0 else { continue }
                // A symlink resolves only inside the sandbox; its target is checked there, at exec.
                if (st.st_mode & S_IFMT) == S_IFLNK { return candidate }
                if (st.st_mode & S_IFMT) == S_IFREG && (st.st_mode & 0o111) != 0 { return candidate }
            }
        }
        throw .missingBootstrap(runtime.bootstrapCandidates)
    }
}
