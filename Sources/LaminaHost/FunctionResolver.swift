import Foundation
import LaminaLayers
import LaminaSandbox
import LaminaStore
import Synchronization

/// What an invocation of `name[:qualifier]` runs: the function version, resolved through aliases.
public struct InvocationTarget: Sendable {
    public var definition: FunctionDefinition
    /// `$LATEST` or the version number (X-Amz-Executed-Version).
    public var executedVersion: String
}

public enum ResolveError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Lambda: ResourceNotFoundException with this message.
    case notFound(String)
    case invalid(String)

    public var description: String {
        switch self {
        case .notFound(let message), .invalid(let message): return message
        }
    }
}

/// Turns stored functions into runnable definitions, with a small cache invalidated on every change
/// the control API makes (and a short lifetime for changes made by other processes, like the CLI).
public final class FunctionResolver: Sendable {
    let functions: any FunctionStore
    let tenants: any TenantStore
    let layers: LayerStore
    let cacheSeconds: Double

    private struct Cached {
        var target: Result<InvocationTarget, ResolveError>
        var alias: Alias?
        var expires: Date
    }
    private let cache = Mutex<[String: Cached]>([:])

    public init(functions: any FunctionStore, tenants: any TenantStore, layers: LayerStore, cacheSeconds: Double = 2) {
        self.functions = functions
        self.tenants = tenants
        self.layers = layers
        self.cacheSeconds = cacheSeconds
    }

    /// Forgets what is cached about one function (or a whole account when `name` is nil).
    public func invalidate(accountId: String, name: String? = nil) {
        let prefix = name.map { "\(accountId)|\($0)|" } ?? "\(accountId)|"
        cache.withLock { cache in cache = cache.filter { !$0.key.hasPrefix(prefix) } }
    }

    public func resolve(accountId: String, region: String, name: String, qualifier: String?) async throws(ResolveError) -> InvocationTarget {
        let key = "\(accountId)|\(name)|\(qualifier ?? "$LATEST")|\(region)"
        let now = Date()
        if let cached = cache.withLock({ $0[key] }), cached.expires > now {
            if let alias = cached.alias, !alias.additionalVersionWeights.isEmpty {
                return try await resolveVersion(accountId: accountId, region: region, name: name, version: pick(alias))
            }
            return try cached.target.get()
        }
        var alias: Alias?
        var version = qualifier ?? "$LATEST"
        if let qualifier, qualifier != "$LATEST", Int(qualifier) == nil {
            do { alias = try await functions.alias(accountId: accountId, functionName: name, name: qualifier) } catch {
                throw .invalid("\(error)")
            }
            guard let alias else { throw .notFound("Function not found: \(Self.arn(region, accountId, name)):\(qualifier)") }
            version = alias.functionVersion
        }
        let result: Result<InvocationTarget, ResolveError>
        do {
            result = .success(try await resolveVersion(accountId: accountId, region: region, name: name, version: version))
        } catch {
            result = .failure(error)
        }
        // Failures are not cached: a function created (or repaired) a moment later must be found.
        if case .success = result {
            cache.withLock { $0[key] = Cached(target: result, alias: alias, expires: now.addingTimeInterval(cacheSeconds)) }
        }
        if let alias, !alias.additionalVersionWeights.isEmpty {
            return try await resolveVersion(accountId: accountId, region: region, name: name, version: pick(alias))
        }
        return try result.get()
    }

    /// Weighted routing: each additional version gets its weight, the alias's own version the rest.
    func pick(_ alias: Alias) -> String {
        var roll = Double.random(in: 0..<1)
        for (version, weight) in alias.additionalVersionWeights.sorted(by: { $0.key < $1.key }) {
            if roll < weight { return version }
            roll -= weight
        }
        return alias.functionVersion
    }

    private func resolveVersion(accountId: String, region: String, name: String, version: String) async throws(ResolveError) -> InvocationTarget {
        let stored: FunctionVersion?
        let record: FunctionRecord?
        let tenant: Tenant?
        let reservedElsewhere: Int
        do {
            stored = try await functions.functionVersion(accountId: accountId, name: name, version: version)
            record = try await functions.function(accountId: accountId, name: name)
            tenant = try await tenants.tenant(accountId: accountId)
            reservedElsewhere = try await functions.totalReservedConcurrency(accountId: accountId, excluding: nil)
        } catch {
            throw .invalid("\(error)")
        }
        let arn = Self.arn(region, accountId, name)
        guard let stored, let record, let tenant else {
            throw .notFound(version == "$LATEST" ? "Function not found: \(arn)" : "Function not found: \(arn):\(version)")
        }
        let configuration = stored.configuration
        guard let runtime = RuntimeCatalog.runtime(named: configuration.runtime) else {
            throw .invalid("The runtime \(configuration.runtime) is not available on this host")
        }
        let code: Tree
        var layerTrees: [Tree] = []
        do {
            code = try layers.tree(archive: configuration.codeDigest, mount: .task)
            for layer in configuration.layers { layerTrees.append(try layers.tree(archive: layer.digest, mount: .opt)) }
        } catch {
            throw .invalid("the code of \(arn):\(version) is not available: \(error)")
        }
        let definition = FunctionDefinition(
            accountId: accountId, region: region, name: name, functionArn: arn, version: stored.version, runtime: runtime,
            handler: configuration.handler, memoryMB: configuration.memorySize, timeoutSeconds: Double(configuration.timeout),
            ephemeralStorageMB: configuration.ephemeralStorage, architecture: configuration.architectures.first ?? "x86_64",
            environment: configuration.environment ?? [:], code: code, layers: layerTrees,
            user: SandboxUser(uid: tenant.uid, gid: tenant.uid),
            concurrency: ConcurrencyLimits(reserved: record.reservedConcurrency, account: tenant.concurrencyLimit,
                                           unreserved: max(0, tenant.concurrencyLimit - reservedElsewhere)),
            configurationKey: "\(accountId)|\(name)|\(stored.version)|\(stored.revisionId)|\(region)")
        return InvocationTarget(definition: definition, executedVersion: stored.version)
    }

    public static func arn(_ region: String, _ accountId: String, _ name: String) -> String {
        "arn:aws:lambda:\(region):\(accountId):function:\(name)"
    }
}
