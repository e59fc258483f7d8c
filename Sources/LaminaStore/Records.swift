import Foundation

/// A tenant: one AWS-style account with its own functions, layers, keys and Unix identity.
public struct Tenant: Sendable, Equatable, Codable {
    /// 12 digits, as in ARNs.
    public var accountId: String
    public var name: String
    /// The uid (and gid) every sandbox of this tenant runs as; never shared with another tenant.
    public var uid: UInt32
    /// Concurrent executions the account may use (Lambda's default is 1000).
    public var concurrencyLimit: Int
    public var createdAt: Date

    public init(accountId: String, name: String, uid: UInt32, concurrencyLimit: Int, createdAt: Date) {
        self.accountId = accountId
        self.name = name
        self.uid = uid
        self.concurrencyLimit = concurrencyLimit
        self.createdAt = createdAt
    }
}

public struct AccessKey: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable { case active = "Active", inactive = "Inactive" }

    public var accessKeyId: String
    public var secretAccessKey: String
    public var accountId: String
    public var status: Status
    public var createdAt: Date
}

/// A layer version a function uses.
public struct LayerReference: Sendable, Equatable, Codable {
    public var arn: String
    public var codeSize: Int64
    /// The archive's SHA-256 in hex: the key in the layer store.
    public var digest: String
    public var unpackedBytes: Int64

    public init(arn: String, codeSize: Int64, digest: String, unpackedBytes: Int64) {
        self.arn = arn
        self.codeSize = codeSize
        self.digest = digest
        self.unpackedBytes = unpackedBytes
    }
}

/// The configuration of one function version (`$LATEST` or a published number), as stored.
public struct FunctionConfiguration: Sendable, Equatable, Codable {
    public var runtime: String
    public var handler: String
    public var role: String
    public var description: String
    public var timeout: Int
    public var memorySize: Int
    public var environment: [String: String]?
    public var ephemeralStorage: Int
    public var architectures: [String]
    public var layers: [LayerReference]
    /// base64 SHA-256 of the code archive (Lambda's CodeSha256).
    public var codeSha256: String
    /// hex SHA-256 of the code archive: the key in the layer store.
    public var codeDigest: String
    public var codeSize: Int64
    public var unpackedBytes: Int64
    public var tracingMode: String
    public var logFormat: String
    public var logGroup: String?

    public init(runtime: String, handler: String, role: String, description: String, timeout: Int, memorySize: Int,
                environment: [String: String]?, ephemeralStorage: Int, architectures: [String], layers: [LayerReference],
                codeSha256: String, codeDigest: String, codeSize: Int64, unpackedBytes: Int64, tracingMode: String = "PassThrough",
                logFormat: String = "Text", logGroup: String? = nil) {
        self.runtime = runtime
        self.handler = handler
        self.role = role
        self.description = description
        self.timeout = timeout
        self.memorySize = memorySize
        self.environment = environment
        self.ephemeralStorage = ephemeralStorage
        self.architectures = architectures
        self.layers = layers
        self.codeSha256 = codeSha256
        self.codeDigest = codeDigest
        self.codeSize = codeSize
        self.unpackedBytes = unpackedBytes
        self.tracingMode = tracingMode
        self.logFormat = logFormat
        self.logGroup = logGroup
    }

    /// Whether two configurations would run the same (PublishVersion skips an unchanged $LATEST).
    public func sameCodeAndSettings(as other: FunctionConfiguration) -> Bool { self == other }
}

public struct FunctionRecord: Sendable, Equatable {
    public var accountId: String
    public var name: String
    public var createdAt: Date
    public var reservedConcurrency: Int?
    public var tags: [String: String]
    /// The highest version number ever published (numbers are never reused).
    public var lastVersion: Int
}

public struct FunctionVersion: Sendable, Equatable {
    public var accountId: String
    public var functionName: String
    /// `$LATEST` or a number.
    public var version: String
    public var configuration: FunctionConfiguration
    public var lastModified: Date
    public var revisionId: String
    /// PublishVersion's description (a published version's own).
    public var versionDescription: String?
}

public struct Alias: Sendable, Equatable {
    public var accountId: String
    public var functionName: String
    public var name: String
    public var functionVersion: String
    public var description: String
    /// RoutingConfig.AdditionalVersionWeights: version -> weight (0...1).
    public var additionalVersionWeights: [String: Double]
    public var revisionId: String

    public init(accountId: String, functionName: String, name: String, functionVersion: String, description: String,
                additionalVersionWeights: [String: Double], revisionId: String) {
        self.accountId = accountId
        self.functionName = functionName
        self.name = name
        self.functionVersion = functionVersion
        self.description = description
        self.additionalVersionWeights = additionalVersionWeights
        self.revisionId = revisionId
    }
}

public struct LayerVersion: Sendable, Equatable {
    public var accountId: String
    public var name: String
    public var version: Int
    public var description: String
    public var compatibleRuntimes: [String]
    public var compatibleArchitectures: [String]
    public var licenseInfo: String?
    public var codeSha256: String
    public var codeDigest: String
    public var codeSize: Int64
    public var unpackedBytes: Int64
    public var createdAt: Date

    public init(accountId: String, name: String, version: Int, description: String, compatibleRuntimes: [String],
                compatibleArchitectures: [String], licenseInfo: String?, codeSha256: String, codeDigest: String, codeSize: Int64,
                unpackedBytes: Int64, createdAt: Date) {
        self.accountId = accountId
        self.name = name
        self.version = version
        self.description = description
        self.compatibleRuntimes = compatibleRuntimes
        self.compatibleArchitectures = compatibleArchitectures
        self.licenseInfo = licenseInfo
        self.codeSha256 = codeSha256
        self.codeDigest = codeDigest
        self.codeSize = codeSize
        self.unpackedBytes = unpackedBytes
        self.createdAt = createdAt
    }
}

/// An asynchronous (`Event`) invocation waiting to run.
public struct QueuedEvent: Sendable, Equatable {
    public var id: Int64
    public var accountId: String
    public var functionName: String
    public var qualifier: String?
    /// The region of the request that queued it (ARNs and AWS_REGION follow it).
    public var region: String
    public var requestId: String
    public var payload: [UInt8]
    public var enqueuedAt: Date
    public var attempts: Int

    public init(id: Int64 = 0, accountId: String, functionName: String, qualifier: String?, region: String, requestId: String,
                payload: [UInt8], enqueuedAt: Date, attempts: Int = 0) {
        self.id = id
        self.accountId = accountId
        self.functionName = functionName
        self.qualifier = qualifier
        self.region = region
        self.requestId = requestId
        self.payload = payload
        self.enqueuedAt = enqueuedAt
        self.attempts = attempts
    }
}

public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(String)
    case conflict(String)
    /// A RevisionId did not match (Lambda: PreconditionFailedException).
    case preconditionFailed(String)
    case invalid(String)
    case database(String)

    public var description: String {
        switch self {
        case .notFound(let m), .conflict(let m), .preconditionFailed(let m), .invalid(let m), .database(let m): return m
        }
    }
}
