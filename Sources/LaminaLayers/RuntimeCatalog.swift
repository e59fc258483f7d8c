/// A Lambda runtime Lamina offers: which root filesystem layers it runs on and how it starts.
public struct RuntimeDescriptor: Sendable, Equatable {
    /// The `Runtime` value of the Lambda API, e.g. "python3.11".
    public let name: String
    /// Root filesystem layers under the function's own, top first, by their rootfs names.
    public let rootfsLayers: [String]
    /// Where the runtime's executable is looked for, in order (Lambda's lookup for custom runtimes:
    /// the function's own `bootstrap`, then one from a layer).
    public let bootstrapCandidates: [String]
    /// `AWS_EXECUTION_ENV`; Lambda does not set it for custom (provided) runtimes.
    public let executionEnvironment: String?
    /// Runtime-specific variables (PYTHONPATH and the like).
    public let environment: [String: String]
    /// Whether this is a custom runtime (the function brings its own bootstrap).
    public var isCustom: Bool { executionEnvironment == nil }
}

public enum RuntimeCatalog {
    static let python311 = RuntimeDescriptor(
        name: "python3.11",
        rootfsLayers: ["python3.11", "base"],
        bootstrapCandidates: ["/var/runtime/bootstrap"],
        executionEnvironment: "AWS_Lambda_python3.11",
        // Layers' Python packages, then the runtime interface client; the handler's own directory
        // (/var/task, the working directory) comes first through `python -m`.
        environment: ["PYTHONPATH": "/opt/python/lib/python3.11/site-packages:/opt/python:/var/runtime"]
    )

    static func provided(_ name: String) -> RuntimeDescriptor {
        RuntimeDescriptor(name: name, rootfsLayers: ["base"], bootstrapCandidates: ["/var/task/bootstrap", "/opt/bootstrap"],
                          executionEnvironment: nil, environment: [:])
    }

    /// Every runtime, by its API name. `provided.al2` and `provided.al2023` run on the same Debian
    /// base as `provided`: the function's bootstrap is the runtime.
    public static let all: [String: RuntimeDescriptor] = [
        "python3.11": python311,
        "provided": provided("provided"),
        "provided.al2": provided("provided.al2"),
        "provided.al2023": provided("provided.al2023"),
    ]

    public static func runtime(named name: String) -> RuntimeDescriptor? { all[name] }

    /// The rootfs layers any runtime needs, for building them up front.
    public static var requiredRootfsLayers: [String] { Array(Set(all.values.flatMap(\.rootfsLayers))).sorted() }
}
