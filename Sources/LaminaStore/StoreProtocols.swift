import Foundation

/// Tenants and their access keys.
public protocol TenantStore: Sendable {
    func createTenant(name: String, concurrencyLimit: Int, uidRange: ClosedRange<UInt32>) async throws -> (Tenant, AccessKey)
    func tenants() async throws -> [Tenant]
    func tenant(named name: String) async throws -> Tenant?
    func tenant(accountId: String) async throws -> Tenant?
    func createAccessKey(accountId: String) async throws -> AccessKey
    func accessKeys(accountId: String) async throws -> [AccessKey]
    func accessKey(id: String) async throws -> AccessKey?
    func setAccessKeyStatus(id: String, status: AccessKey.Status) async throws
    func deleteAccessKey(id: String) async throws
}

/// Functions, versions, aliases, tags and reserved concurrency.
public protocol FunctionStore: Sendable {
    func createFunction(accountId: String, name: String, configuration: FunctionConfiguration, tags: [String: String],
                        publish: Bool, at: Date) async throws -> (latest: FunctionVersion, published: FunctionVersion?)
    func function(accountId: String, name: String) async throws -> FunctionRecord?
    func functionVersion(accountId: String, name: String, version: String) async throws -> FunctionVersion?
    /// Functions of an account, sorted by name, after `marker` (a name), at most `limit`.
    func functions(accountId: String, after marker: String?, limit: Int) async throws -> [FunctionRecord]
    func versions(accountId: String, name: String) async throws -> [FunctionVersion]
    func updateLatest(accountId: String, name: String, expectedRevision: String?, at: Date,
                      _ change: @escaping @Sendable (inout FunctionConfiguration) throws -> Void) async throws -> FunctionVersion
    func publishVersion(accountId: String, name: String, expectedRevision: String?, expectedCodeSha256: String?,
                        description: String?, at: Date) async throws -> FunctionVersion
    func deleteFunction(accountId: String, name: String) async throws
    func deleteVersion(accountId: String, name: String, version: String) async throws
    func setReservedConcurrency(accountId: String, name: String, value: Int?) async throws
    /// Sum of every function's reserved concurrency in the account (optionally leaving one out).
    func totalReservedConcurrency(accountId: String, excluding name: String?) async throws -> Int
    func setTags(accountId: String, name: String, adding: [String: String], removing: [String]) async throws
    func createAlias(_ alias: Alias) async throws
    func alias(accountId: String, functionName: String, name: String) async throws -> Alias?
    func aliases(accountId: String, functionName: String) async throws -> [Alias]
    func updateAlias(accountId: String, functionName: String, name: String, expectedRevision: String?,
                     _ change: @escaping @Sendable (inout Alias) throws -> Void) async throws -> Alias
    func deleteAlias(accountId: String, functionName: String, name: String) async throws
    /// Function count and total code size of an account (GetAccountSettings' usage).
    func usage(accountId: String) async throws -> (functions: Int, codeSize: Int64)
    /// Every archive digest any function version or layer version still uses (the layer store's gc roots).
    func referencedDigests() async throws -> Set<String>
}

/// Layer versions.
public protocol LayerRegistryStore: Sendable {
    func publishLayerVersion(_ layer: LayerVersion) async throws -> LayerVersion
    func layerVersion(accountId: String, name: String, version: Int) async throws -> LayerVersion?
    func layerVersions(accountId: String, name: String) async throws -> [LayerVersion]
    /// The latest version of each layer of an account, by name.
    func latestLayerVersions(accountId: String) async throws -> [LayerVersion]
    func deleteLayerVersion(accountId: String, name: String, version: Int) async throws
}

/// The durable queue of asynchronous invocations (at least once).
public protocol AsyncQueueStore: Sendable {
    func enqueue(_ event: QueuedEvent) async throws -> Int64
    /// Leases up to `limit` due events for `leaseSeconds`; an event whose lease expires (the daemon
    /// died) is handed out again.
    func leaseEvents(limit: Int, leaseSeconds: Double, now: Date) async throws -> [QueuedEvent]
    func complete(eventId: Int64) async throws
    /// Puts an event back to run no earlier than `notBefore`, counting an attempt.
    func retry(eventId: Int64, notBefore: Date) async throws
    func pendingEventCount() async throws -> Int
}
