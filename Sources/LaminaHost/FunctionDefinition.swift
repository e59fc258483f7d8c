import LaminaLayers
import LaminaSandbox

/// Everything the invoker needs to run one version of one function, already resolved by the caller
/// (the control API resolves names, qualifiers and layers; `lamina run` builds one from flags).
public struct FunctionDefinition: Sendable {
    public var accountId: String
    public var region: String
    public var name: String
    /// Unqualified: `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
    public var functionArn: String
    /// `$LATEST` or a published version number.
    public var version: String
    public var runtime: RuntimeDescriptor
    public var handler: String
    public var memoryMB: Int
    public var timeoutSeconds: Double
    public var ephemeralStorageMB: Int
    public var architecture: String
    /// The function's own variables (reserved names are the host's and win).
    public var environment: [String: String]
    public var code: Tree
    public var layers: [Tree]
    /// The tenant's uid/gid: never shared with another tenant.
    public var user: SandboxUser
    public var concurrency: ConcurrencyLimits
    /// Identifies this exact code and configuration: environments are reused only for the same key.
    public var configurationKey: String

    public init(accountId: String, region: String, name: String, functionArn: String, version: String,
                runtime: RuntimeDescriptor, handler: String, memoryMB: Int, timeoutSeconds: Double,
                ephemeralStorageMB: Int = 512, architecture: String = "x86_64", environment: [String: String] = [:],
                code: Tree, layers: [Tree] = [], user: SandboxUser, concurrency: ConcurrencyLimits = ConcurrencyLimits(),
                configurationKey: String) {
        self.accountId = accountId
        self.region = region
        self.name = name
        self.functionArn = functionArn
        self.version = version
        self.runtime = runtime
        self.handler = handler
        self.memoryMB = memoryMB
        self.timeoutSeconds = timeoutSeconds
        self.ephemeralStorageMB = ephemeralStorageMB
        self.architecture = architecture
        self.environment = environment
        self.code = code
        self.layers = layers
        self.user = user
        self.concurrency = concurrency
        self.configurationKey = configurationKey
    }

    /// `/aws/lambda/NAME`.
    public var logGroup: String { "/aws/lambda/\(name)" }
}

/// The concurrency a function may use, as Lambda accounts it: in-flight invocations, not idle
/// environments.
public struct ConcurrencyLimits: Sendable, Equatable {
    /// The function's reserved concurrency (all its versions together), if set; 0 throttles everything.
    public var reserved: Int?
    /// The account's limit.
    public var account: Int
    /// What functions without a reservation share: the account limit minus all reservations.
    public var unreserved: Int

    public init(reserved: Int? = nil, account: Int = 1000, unreserved: Int? = nil) {
        self.reserved = reserved
        self.account = account
        self.unreserved = unreserved ?? account
    }
}
