#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import LaminaBilling
import LaminaHost
import LaminaLayers
import LaminaStore
import Logging
import Synchronization

public struct ControlAPIConfiguration: Sendable {
    /// Lambda's direct-upload limit for a zipped deployment package.
    public var maxZippedBytes = 52_428_800
    /// Lambda's request limit for CreateFunction (a base64 zip inside JSON).
    public var maxRequestBytes = 70_167_211
    /// Lambda keeps 100 concurrent executions unreserved per account.
    public var minimumUnreservedConcurrency = 100
    /// How long an access key lookup is cached (a revoked key stops working within this time).
    public var keyCacheSeconds: Double = 1
    /// Secret for the signed code-download URLs of GetFunction.
    public var downloadSecret: [UInt8] = (0..<32).map { _ in UInt8.random(in: 0...255) }
    /// Runtimes a function may name.
    public var runtimes: [String] = RuntimeCatalog.all.keys.sorted()

    public init() {}
}

/// One HTTP response of the API, independent of the server framework.
public struct APIResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static func json(_ object: Any, status: Int = 200) -> APIResponse {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return APIResponse(status: status, headers: [("Content-Type", "application/json")], body: Array(data))
    }

    static func empty(_ status: Int) -> APIResponse { APIResponse(status: status) }
}

/// One authenticated call: who, where, and what was sent.
struct Call: @unchecked Sendable {
    var accountId: String
    var region: String
    var method: String
    /// Decoded path segments.
    var segments: [String]
    var query: [(String, String)]
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    var requestId: String
    var authority: String

    func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }

    func queryValue(_ name: String) -> String? { query.first { $0.0 == name }?.1 }
    func queryValues(_ name: String) -> [String] { query.filter { $0.0 == name }.map(\.1) }

    /// The body as a JSON object (an empty body is an empty object).
    func json() throws(APIError) -> [String: Any] {
        if body.isEmpty { return [:] }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)), let dictionary = object as? [String: Any] else {
            throw APIError.invalidContent("Could not parse request body into json: the body is not a JSON object")
        }
        return dictionary
    }
}

/// The Lambda control API. `handle` is the whole protocol; `LaminaDaemon` serves it over HTTP.
public final class ControlAPI: Sendable {
    let configuration: ControlAPIConfiguration
    let store: SQLiteStore
    let layers: LayerStore
    let invoker: Invoker
    let resolver: FunctionResolver
    let asyncWorker: AsyncInvocationWorker?
    let metrics: LaminaMetrics
    let logger: Logger
    let verifier = SigV4Verifier()
    private let keyCache = Mutex<[String: (key: AccessKey, expires: Date)]>([:])

    public init(configuration: ControlAPIConfiguration = ControlAPIConfiguration(), store: SQLiteStore, layers: LayerStore,
                invoker: Invoker, resolver: FunctionResolver, asyncWorker: AsyncInvocationWorker?, metrics: LaminaMetrics,
                logger: Logger = Logger(label: "lamina.api")) {
        self.configuration = configuration
        self.store = store
        self.layers = layers
        self.invoker = invoker
        self.resolver = resolver
        self.asyncWorker = asyncWorker
        self.metrics = metrics
        self.logger = logger
    }

    /// Answers one request. `authority` is the Host header (with port).
    public func handle(method: String, rawPath: String, rawQuery: String?, authority: String,
                       headers: [(name: String, value: String)], body: [UInt8]) async -> APIResponse {
        let requestId = RequestID.make()
        var response: APIResponse
        do {
            response = try await route(method: method, rawPath: rawPath, rawQuery: rawQuery, authority: authority,
                                       headers: headers, body: body, requestId: requestId)
        } catch let error as APIError {
            response = Self.errorResponse(error)
        } catch {
            logger.error("unexpected error", metadata: ["error": "\(error)", "path": "\(rawPath)"])
            response = Self.errorResponse(.service("\(error)"))
        }
        response.headers.append(("x-amzn-RequestId", requestId))
        return response
    }

    static func errorResponse(_ error: APIError) -> APIResponse {
        var response = APIResponse.json(error.body, status: error.status)
        response.headers.append(("x-amzn-ErrorType", error.code))
        for (name, value) in error.headers { response.headers.append((name, value)) }
        return response
    }

    // MARK: Authentication

    private func authenticate(method: String, rawPath: String, rawQuery: String?, authority: String,
                              headers: [(name: String, value: String)], body: [UInt8]) async throws(APIError) -> (accountId: String, region: String) {
        var signedHeaders = headers
        if !signedHeaders.contains(where: { $0.name.lowercased() == "host" }) { signedHeaders.append((name: "host", value: authority)) }
        let request = SigV4Verifier.Request(method: method, rawPath: rawPath, rawQuery: rawQuery, headers: signedHeaders,
                                            bodySHA256: SigV4Verifier.hex(SHA256.hash(data: body)))
        var account: String?
        let result = await verifier.verify(request, now: Date()) { id in
            guard let key = await self.lookupKey(id), key.status == .active else { return nil }
            account = key.accountId
            return key.secretAccessKey
        }
        switch result {
        case .success(let identity):
            guard let account else { throw APIError.unrecognizedClient }
            return (account, identity.region)
        case .failure(.missing): throw APIError.missingToken
        case .failure(.unknownKey): throw APIError.unrecognizedClient
        case .failure(.mismatch): throw APIError.signatureMismatch
        case .failure(.expired(let message)), .failure(.malformed(let message)), .failure(.wrongService(let message)):
            throw APIError.invalidSignature(message)
        }
    }

    private func lookupKey(_ id: String) async -> AccessKey? {
        let now = Date()
        if let cached = keyCache.withLock({ $0[id] }), cached.expires > now { return cached.key }
        guard let key = try? await store.accessKey(id: id) else { return nil }
        keyCache.withLock { $0[id] = (key, now.addingTimeInterval(configuration.keyCacheSeconds)) }
        return key
    }

    // MARK: Routing

    private func route(method: String, rawPath: String, rawQuery: String?, authority: String,
                       headers: [(name: String, value: String)], body: [UInt8], requestId: String) async throws -> APIResponse {
        let segments = rawPath.split(separator: "/", omittingEmptySubsequences: true).map { String($0).removingPercentEncoding ?? String($0) }
        if segments.first == "_lamina", segments.count == 3, segments[1] == "code" {
            return codeDownload(digest: segments[2], query: SigV4Verifier.queryPairs(rawQuery))
        }
        let (accountId, region) = try await authenticate(method: method, rawPath: rawPath, rawQuery: rawQuery, authority: authority,
                                                         headers: headers, body: body)
        let call = Call(accountId: accountId, region: region, method: method, segments: segments,
                        query: SigV4Verifier.queryPairs(rawQuery), headers: headers, body: body, requestId: requestId, authority: authority)
        let s = segments
        switch (method, s.count, s.first) {
        case ("POST", 4, "2015-03-31") where s[1] == "functions" && s[3] == "invocations":
            return try await invoke(call, name: s[2])
        case ("POST", 4, "2014-11-13") where s[1] == "functions" && s[3] == "invoke-async":
            return try await invokeAsyncLegacy(call, name: s[2])
        case ("POST", 2, "2015-03-31") where s[1] == "functions": return try await createFunction(call)
        case ("GET", 2, "2015-03-31") where s[1] == "functions": return try await listFunctions(call)
        case ("GET", 3, "2015-03-31") where s[1] == "functions": return try await getFunction(call, name: s[2])
        case ("DELETE", 3, "2015-03-31") where s[1] == "functions": return try await deleteFunction(call, name: s[2])
        case ("GET", 4, "2015-03-31") where s[1] == "functions" && s[3] == "configuration":
            return try await getFunctionConfiguration(call, name: s[2])
        case ("PUT", 4, "2015-03-31") where s[1] == "functions" && s[3] == "configuration":
            return try await updateFunctionConfiguration(call, name: s[2])
        case ("PUT", 4, "2015-03-31") where s[1] == "functions" && s[3] == "code":
            return try await updateFunctionCode(call, name: s[2])
        case ("POST", 4, "2015-03-31") where s[1] == "functions" && s[3] == "versions":
            return try await publishVersion(call, name: s[2])
        case ("GET", 4, "2015-03-31") where s[1] == "functions" && s[3] == "versions":
            return try await listVersions(call, name: s[2])
        case ("POST", 4, "2015-03-31") where s[1] == "functions" && s[3] == "aliases":
            return try await createAlias(call, name: s[2])
        case ("GET", 4, "2015-03-31") where s[1] == "functions" && s[3] == "aliases":
            return try await listAliases(call, name: s[2])
        case ("GET", 5, "2015-03-31") where s[1] == "functions" && s[3] == "aliases":
            return try await getAlias(call, name: s[2], alias: s[4])
        case ("PUT", 5, "2015-03-31") where s[1] == "functions" && s[3] == "aliases":
            return try await updateAlias(call, name: s[2], alias: s[4])
        case ("DELETE", 5, "2015-03-31") where s[1] == "functions" && s[3] == "aliases":
            return try await deleteAlias(call, name: s[2], alias: s[4])
        case ("POST", 3, "2017-03-31") where s[1] == "tags": return try await tagResource(call, arn: s[2])
        case ("GET", 3, "2017-03-31") where s[1] == "tags": return try await listTags(call, arn: s[2])
        case ("DELETE", 3, "2017-03-31") where s[1] == "tags": return try await untagResource(call, arn: s[2])
        case ("PUT", 4, "2017-10-31") where s[1] == "functions" && s[3] == "concurrency":
            return try await putConcurrency(call, name: s[2])
        case ("DELETE", 4, "2017-10-31") where s[1] == "functions" && s[3] == "concurrency":
            return try await deleteConcurrency(call, name: s[2])
        case ("GET", 4, "2019-09-30") where s[1] == "functions" && s[3] == "concurrency":
            return try await getConcurrency(call, name: s[2])
        case ("GET", 2, "2016-08-19") where s[1] == "account-settings": return try await accountSettings(call)
        case ("GET", 2, "2018-10-31") where s[1] == "layers":
            if call.queryValue("find") == "LayerVersion" { return try await getLayerVersionByArn(call) }
            return try await listLayers(call)
        case ("POST", 4, "2018-10-31") where s[1] == "layers" && s[3] == "versions":
            return try await publishLayerVersion(call, name: s[2])
        case ("GET", 4, "2018-10-31") where s[1] == "layers" && s[3] == "versions":
            return try await listLayerVersions(call, name: s[2])
        case ("GET", 5, "2018-10-31") where s[1] == "layers" && s[3] == "versions":
            return try await getLayerVersion(call, name: s[2], version: s[4])
        case ("DELETE", 5, "2018-10-31") where s[1] == "layers" && s[3] == "versions":
            return try await deleteLayerVersion(call, name: s[2], version: s[4])
        default:
            throw APIError.unknownOperation(method, rawPath)
        }
    }

    // MARK: Shared lookups

    /// The caller's own function, or ResourceNotFoundException (also for another tenant's ARN).
    func reference(_ call: Call, _ name: String, qualifier: String? = nil) throws(APIError) -> FunctionReference {
        let reference = try FunctionReference.parse(name, qualifier: qualifier ?? call.queryValue("Qualifier"))
        if let account = reference.accountId, account != call.accountId {
            throw APIError.notFound("Function not found: \(ARN.function(call.region, account, reference.name, qualifier: reference.qualifier))")
        }
        return reference
    }

    func requireFunction(_ call: Call, _ reference: FunctionReference) async throws -> FunctionRecord {
        guard let record = try await store.function(accountId: call.accountId, name: reference.name) else {
            throw APIError.notFound("Function not found: \(ARN.function(call.region, call.accountId, reference.name))")
        }
        return record
    }

    /// The version a qualifier names ($LATEST, a number, or an alias).
    func resolveVersion(_ call: Call, _ reference: FunctionReference) async throws -> FunctionVersion {
        var version = reference.qualifier ?? "$LATEST"
        if version != "$LATEST", Int(version) == nil {
            guard let alias = try await store.alias(accountId: call.accountId, functionName: reference.name, name: version) else {
                throw APIError.notFound("Function not found: \(ARN.function(call.region, call.accountId, reference.name, qualifier: version))")
            }
            version = alias.functionVersion
        }
        guard let stored = try await store.functionVersion(accountId: call.accountId, name: reference.name, version: version) else {
            let qualifier = reference.qualifier.flatMap { $0 == "$LATEST" ? nil : $0 }
            throw APIError.notFound("Function not found: \(ARN.function(call.region, call.accountId, reference.name, qualifier: qualifier))")
        }
        return stored
    }

    /// Maps store errors to Lambda's exceptions.
    func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as StoreError {
            switch error {
            case .notFound(let message): throw APIError.notFound(message)
            case .conflict(let message): throw APIError.conflict(message)
            case .preconditionFailed(let message): throw APIError.preconditionFailed(message)
            case .invalid(let message): throw APIError.invalidParameter(message)
            case .database(let message): throw APIError.service(message)
            }
        }
    }

    // MARK: Code download (GetFunction's Code.Location)

    func codeDownloadURL(_ call: Call, digest: String) -> String {
        let expires = Int(Date().timeIntervalSince1970) + 600
        return "http://\(call.authority)/_lamina/code/\(digest)?expires=\(expires)&signature=\(downloadSignature(digest, expires))"
    }

    private func downloadSignature(_ digest: String, _ expires: Int) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(digest)|\(expires)".utf8), using: SymmetricKey(data: configuration.downloadSecret))
        return SigV4Verifier.hex(mac)
    }

    private func codeDownload(digest: String, query: [(String, String)]) -> APIResponse {
        guard let expires = query.first(where: { $0.0 == "expires" }).flatMap({ Int($0.1) }),
              let signature = query.first(where: { $0.0 == "signature" })?.1,
              expires >= Int(Date().timeIntervalSince1970), signature == downloadSignature(digest, expires),
              digest.allSatisfy(\.isHexDigit), let data = FileManager.default.contents(atPath: layers.archivePath(digest)) else {
            return Self.errorResponse(.accessDenied)
        }
        return APIResponse(status: 200, headers: [("Content-Type", "application/zip")], body: Array(data))
    }
}
