import Foundation
import LaminaHost
import LaminaLayers
import LaminaStore

extension ControlAPI {
    // MARK: Shapes

    /// FunctionConfiguration as Lambda returns it (LAMBDA.md §3.5).
    func configurationShape(_ call: Call, _ version: FunctionVersion) -> [String: Any] {
        let c = version.configuration
        let unqualified = ARN.function(call.region, call.accountId, version.functionName)
        var shape: [String: Any] = [
            "FunctionName": version.functionName,
            "FunctionArn": version.version == "$LATEST" ? unqualified : "\(unqualified):\(version.version)",
            "Runtime": c.runtime,
            "Role": c.role,
            "Handler": c.handler,
            "CodeSize": c.codeSize,
            "Description": version.version == "$LATEST" ? c.description : (version.versionDescription ?? c.description),
            "Timeout": c.timeout,
            "MemorySize": c.memorySize,
            "LastModified": lambdaTimestamp(version.lastModified),
            "CodeSha256": c.codeSha256,
            "Version": version.version,
            "TracingConfig": ["Mode": c.tracingMode],
            "RevisionId": version.revisionId,
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": c.architectures,
            "EphemeralStorage": ["Size": c.ephemeralStorage],
            "LoggingConfig": ["LogFormat": c.logFormat, "LogGroup": c.logGroup ?? "/aws/lambda/\(version.functionName)"],
            "SnapStart": ["ApplyOn": "None", "OptimizationStatus": "Off"],
        ]
        if let variables = c.environment { shape["Environment"] = ["Variables": variables] }
        if !c.layers.isEmpty { shape["Layers"] = c.layers.map { ["Arn": $0.arn, "CodeSize": $0.codeSize] } }
        return shape
    }

    // MARK: Operations

    func createFunction(_ call: Call) async throws -> APIResponse {
        guard call.body.count <= configuration.maxRequestBytes else {
            throw APIError.tooLarge("Request must be smaller than \(configuration.maxRequestBytes) bytes for the CreateFunction operation")
        }
        let body = try call.json()
        let name = try Validate.string(body, "FunctionName", required: true, maxLength: 140)!
        let reference = try FunctionReference.parse(name, qualifier: nil)
        guard reference.qualifier == nil else { throw APIError.invalidParameter("FunctionName must not include a qualifier when creating a function.") }
        if let account = reference.accountId, account != call.accountId {
            throw APIError.accessDenied
        }
        if (body["PackageType"] as? String) == "Image" {
            throw APIError.invalidParameter("PackageType Image is not supported by this host: upload a .zip with Code.ZipFile")
        }
        var settings = try FunctionSettings.parse(body, creating: true, runtimes: configuration.runtimes)
        let code = try await importCode(body["Code"], mount: .task)
        let layerReferences = try await resolveLayers(call, settings.layers ?? [])
        try Validate.totalSize(code: code.tree.summary.unpackedBytes, layers: layerReferences)
        var tags = [String: String]()
        if let given = body["Tags"] { tags = try Validate.tags(given) }
        settings.layers = nil
        let configuration = settings.apply(to: nil, code: code, layers: layerReferences)
        let publish = body["Publish"] as? Bool ?? false
        let (latest, published) = try await mapped {
            try await store.createFunction(accountId: call.accountId, name: reference.name, configuration: configuration,
                                           tags: tags, publish: publish, at: Date())
        }
        resolver.invalidate(accountId: call.accountId, name: reference.name)
        return .json(configurationShape(call, published ?? latest), status: 201)
    }

    func getFunction(_ call: Call, name: String) async throws -> APIResponse {
        let reference = try self.reference(call, name)
        let record = try await requireFunction(call, reference)
        let version = try await resolveVersion(call, reference)
        var response: [String: Any] = [
            "Configuration": configurationShape(call, version),
            "Code": ["RepositoryType": "S3", "Location": codeDownloadURL(call, digest: version.configuration.codeDigest)],
        ]
        if !record.tags.isEmpty { response["Tags"] = record.tags }
        if let reserved = record.reservedConcurrency { response["Concurrency"] = ["ReservedConcurrentExecutions": reserved] }
        return .json(response)
    }

    func getFunctionConfiguration(_ call: Call, name: String) async throws -> APIResponse {
        let reference = try self.reference(call, name)
        _ = try await requireFunction(call, reference)
        return .json(configurationShape(call, try await resolveVersion(call, reference)))
    }

    func listFunctions(_ call: Call) async throws -> APIResponse {
        let limit = try Validate.maxItems(call.queryValue("MaxItems"), range: 1...10_000, default: 50)
        let marker = call.queryValue("Marker").flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
        let allVersions = call.queryValue("FunctionVersion") == "ALL"
        let records = try await store.functions(accountId: call.accountId, after: marker, limit: limit + 1)
        var functions: [[String: Any]] = []
        for record in records.prefix(limit) {
            if allVersions {
                for version in try await store.versions(accountId: call.accountId, name: record.name) {
                    functions.append(configurationShape(call, version))
                }
            } else if let latest = try await store.functionVersion(accountId: call.accountId, name: record.name, version: "$LATEST") {
                functions.append(configurationShape(call, latest))
            }
        }
        var response: [String: Any] = ["Functions": functions]
        if records.count > limit, let last = records.prefix(limit).last {
            response["NextMarker"] = Data(last.name.utf8).base64EncodedString()
        }
        return .json(response)
    }

    func updateFunctionCode(_ call: Call, name: String) async throws -> APIResponse {
        guard call.body.count <= configuration.maxRequestBytes else {
            throw APIError.tooLarge("Request must be smaller than \(configuration.maxRequestBytes) bytes for the UpdateFunctionCode operation")
        }
        let reference = try self.reference(call, name, qualifier: "")
        _ = try await requireFunction(call, reference)
        let body = try call.json()
        if body["ImageUri"] != nil { throw APIError.invalidParameter("Please don't provide ImageUri when updating a function with packageType Zip.") }
        if let architectures = body["Architectures"] { _ = try Validate.architectures(architectures) }
        let code = try await importCode(["ZipFile": body["ZipFile"] as Any, "S3Bucket": body["S3Bucket"] as Any], mount: .task)
        let current = try await resolveVersion(call, FunctionReference(name: reference.name, qualifier: nil))
        try Validate.totalSize(code: code.tree.summary.unpackedBytes, layers: current.configuration.layers)
        if body["DryRun"] as? Bool == true { return .json(configurationShape(call, current)) }
        let revision = body["RevisionId"] as? String
        let updated = try await mapped {
            try await store.updateLatest(accountId: call.accountId, name: reference.name, expectedRevision: revision, at: Date()) { configuration in
                configuration.codeSha256 = code.archive.codeSha256
                configuration.codeDigest = code.archive.digest
                configuration.codeSize = code.archive.size
                configuration.unpackedBytes = code.tree.summary.unpackedBytes
            }
        }
        var result = updated
        if body["Publish"] as? Bool == true {
            result = try await mapped {
                try await store.publishVersion(accountId: call.accountId, name: reference.name, expectedRevision: nil,
                                               expectedCodeSha256: nil, description: nil, at: Date())
            }
        }
        resolver.invalidate(accountId: call.accountId, name: reference.name)
        return .json(configurationShape(call, result))
    }

    func updateFunctionConfiguration(_ call: Call, name: String) async throws -> APIResponse {
        let reference = try self.reference(call, name, qualifier: "")
        _ = try await requireFunction(call, reference)
        let body = try call.json()
        let settings = try FunctionSettings.parse(body, creating: false, runtimes: configuration.runtimes)
        var layerReferences: [LayerReference]?
        if let arns = settings.layers {
            layerReferences = try await resolveLayers(call, arns)
            let current = try await resolveVersion(call, FunctionReference(name: reference.name, qualifier: nil))
            try Validate.totalSize(code: current.configuration.unpackedBytes, layers: layerReferences!)
        }
        let revision = body["RevisionId"] as? String
        let newLayers = layerReferences
        let updated = try await mapped {
            try await store.updateLatest(accountId: call.accountId, name: reference.name, expectedRevision: revision, at: Date()) { configuration in
                configuration = settings.apply(to: configuration, code: nil, layers: newLayers)
            }
        }
        resolver.invalidate(accountId: call.accountId, name: reference.name)
        return .json(configurationShape(call, updated))
    }

    func deleteFunction(_ call: Call, name: String) async throws -> APIResponse {
        let reference = try self.reference(call, name)
        _ = try await requireFunction(call, reference)
        if let qualifier = reference.qualifier {
            guard qualifier != "$LATEST" else {
                throw APIError.invalidParameter("$LATEST version cannot be deleted without deleting the function.")
            }
            guard Int(qualifier) != nil else {
                throw APIError.invalidParameter("Deletion of aliases is not supported by DeleteFunction: use DeleteAlias")
            }
            try await mapped { try await store.deleteVersion(accountId: call.accountId, name: reference.name, version: qualifier) }
        } else {
            try await mapped { try await store.deleteFunction(accountId: call.accountId, name: reference.name) }
        }
        resolver.invalidate(accountId: call.accountId, name: reference.name)
        return .empty(204)
    }

    func publishVersion(_ call: Call, name: String) async throws -> APIResponse {
        let reference = try self.reference(call, name, qualifier: "")
        _ = try await requireFunction(call, reference)
        let body = try call.json()
        let description = try Validate.string(body, "Description", maxLength: 256)
        let published = try await mapped {
            try await store.publishVersion(accountId: call.accountId, name: reference.name, expectedRevision: body["RevisionId"] as? String,
                                           expectedCodeSha256: body["CodeSha256"] as? String, description: description, at: Date())
        }
        resolver.invalidate(accountId: call.accountId, name: reference.name)
        return .json(configurationShape(call, published), status: 201)
    }

    func listVersions(_ call: Call, name: String) async throws -> APIResponse {
        let reference = try self.reference(call, name, qualifier: "")
        _ = try await requireFunction(call, reference)
        let limit = try Validate.maxItems(call.queryValue("MaxItems"), range: 1...10_000, default: 50)
        let versions = try await store.versions(accountId: call.accountId, name: reference.name)
        let start = call.queryValue("Marker").flatMap { marker in versions.firstIndex { $0.version == marker }.map { $0 + 1 } } ?? 0
        let page = Array(versions.dropFirst(start).prefix(limit))
        var response: [String: Any] = ["Versions": page.map { configurationShape(call, $0) }]
        if start + page.count < versions.count, let last = page.last { response["NextMarker"] = last.version }
        return .json(response)
    }

    // MARK: Code and layers of a request

    struct ImportedCode {
        var archive: StoredArchive
        var tree: Tree
    }

    /// Stores and validates `Code` (`{"ZipFile": base64}`); a bad archive leaves nothing stored.
    func importCode(_ value: Any?, mount: TreeMount) async throws -> ImportedCode {
        guard let code = value as? [String: Any] else {
            throw APIError.validation(value: "null", field: "code", constraint: "Member must not be null")
        }
        if let bucket = code["S3Bucket"] as? String, !bucket.isEmpty {
            throw APIError.invalidParameter("Code.S3Bucket is not supported by this host: upload the archive with ZipFile")
        }
        guard let text = code["ZipFile"] as? String, let bytes = Data(base64Encoded: text) else {
            throw APIError.invalidParameter("Code.ZipFile must be a base64-encoded .zip archive")
        }
        guard bytes.count <= configuration.maxZippedBytes else {
            throw APIError.tooLarge("Zipped size must be smaller than \(configuration.maxZippedBytes) bytes")
        }
        do {
            let (archive, tree) = try layers.importArchive(bytes: Array(bytes), mount: mount)
            return ImportedCode(archive: archive, tree: tree)
        } catch LayerError.invalidArchive(let reason) where reason.hasPrefix("unzipped size must be smaller") {
            throw APIError.invalidParameter("Unzipped size must be smaller than 262144000 bytes")
        } catch LayerError.invalidArchive(let reason) {
            throw APIError.invalidParameter("Could not unzip uploaded file. Please check your file, then try to upload again. (\(reason))")
        } catch {
            throw APIError.service("\(error)")
        }
    }

    /// The caller's own layer versions, by ARN; another tenant's look like missing ones.
    func resolveLayers(_ call: Call, _ arns: [String]) async throws -> [LayerReference] {
        guard arns.count <= FunctionRootPlan.maxLayers else { throw APIError.invalidParameter("Cannot reference more than 5 layers.") }
        var references: [LayerReference] = []
        var names = Set<String>()
        for arn in arns {
            guard let parsed = ARN.parseLayerVersion(arn) else {
                throw APIError.validation(value: arn, field: "layers",
                                          constraint: "Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+")
            }
            guard parsed.account == call.accountId, parsed.region == call.region,
                  let layer = try await store.layerVersion(accountId: call.accountId, name: parsed.name, version: parsed.version) else {
                throw APIError.invalidParameter("Layer version \(arn) does not exist.")
            }
            guard names.insert(parsed.name).inserted else {
                throw APIError.invalidParameter("Two different versions of the same layer are not allowed to be referenced in the same function. \(ARN.layer(call.region, call.accountId, parsed.name))")
            }
            references.append(LayerReference(arn: arn, codeSize: layer.codeSize, digest: layer.codeDigest, unpackedBytes: layer.unpackedBytes))
        }
        return references
    }
}
