import Foundation
import LaminaLayers
import LaminaStore

extension ControlAPI {
    func layerVersionShape(_ call: Call, _ layer: LayerVersion) -> [String: Any] {
        var shape: [String: Any] = [
            "Content": ["Location": codeDownloadURL(call, digest: layer.codeDigest), "CodeSha256": layer.codeSha256, "CodeSize": layer.codeSize],
            "LayerArn": ARN.layer(call.region, call.accountId, layer.name),
            "LayerVersionArn": ARN.layerVersion(call.region, call.accountId, layer.name, layer.version),
            "Description": layer.description,
            "CreatedDate": lambdaTimestamp(layer.createdAt),
            "Version": layer.version,
            "CompatibleRuntimes": layer.compatibleRuntimes,
            "CompatibleArchitectures": layer.compatibleArchitectures,
        ]
        if let license = layer.licenseInfo { shape["LicenseInfo"] = license }
        return shape
    }

    /// The entry of ListLayers/ListLayerVersions (no Content).
    func layerVersionListShape(_ call: Call, _ layer: LayerVersion) -> [String: Any] {
        var shape = layerVersionShape(call, layer)
        shape.removeValue(forKey: "Content")
        shape.removeValue(forKey: "LayerArn")
        return shape
    }

    /// A layer name from the path: a name or the caller's own layer ARN.
    func layerName(_ call: Call, _ text: String) throws(APIError) -> String {
        var name = text
        if text.hasPrefix("arn:") {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 7, parts[5] == "layer" else { throw APIError.invalidParameter("Invalid layer ARN: \(text)") }
            guard parts[4] == call.accountId else { throw APIError.notFound("Layer version \(text) does not exist.") }
            name = parts[6]
        }
        guard Patterns.isName(name, max: 140) else {
            throw APIError.validation(value: name, field: "layerName",
                                      constraint: "Member must satisfy regular expression pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+")
        }
        return name
    }

    func publishLayerVersion(_ call: Call, name: String) async throws -> APIResponse {
        guard call.body.count <= configuration.maxRequestBytes else {
            throw APIError.tooLarge("Request must be smaller than \(configuration.maxRequestBytes) bytes for the PublishLayerVersion operation")
        }
        let layerName = try self.layerName(call, name)
        let body = try call.json()
        let code = try await importCode(body["Content"], mount: .opt)
        let runtimes = body["CompatibleRuntimes"] as? [String] ?? []
        guard runtimes.count <= 15 else { throw APIError.validation(value: "\(runtimes)", field: "compatibleRuntimes", constraint: "Member must have length less than or equal to 15") }
        let architectures = body["CompatibleArchitectures"] as? [String] ?? []
        guard architectures.count <= 2, architectures.allSatisfy({ ["x86_64", "arm64"].contains($0) }) else {
            throw APIError.validation(value: "\(architectures)", field: "compatibleArchitectures", constraint: "Member must satisfy enum value set: [x86_64, arm64]")
        }
        let layer = LayerVersion(
            accountId: call.accountId, name: layerName, version: 0, description: try Validate.string(body, "Description", maxLength: 256) ?? "",
            compatibleRuntimes: runtimes, compatibleArchitectures: architectures, licenseInfo: try Validate.string(body, "LicenseInfo", maxLength: 512),
            codeSha256: code.archive.codeSha256, codeDigest: code.archive.digest, codeSize: code.archive.size,
            unpackedBytes: code.tree.summary.unpackedBytes, createdAt: Date())
        let published = try await mapped { try await store.publishLayerVersion(layer) }
        return .json(layerVersionShape(call, published), status: 201)
    }

    func getLayerVersion(_ call: Call, name: String, version: String) async throws -> APIResponse {
        let layerName = try self.layerName(call, name)
        guard let number = Int(version),
              let layer = try await store.layerVersion(accountId: call.accountId, name: layerName, version: number) else {
            throw APIError.notFound("Layer version \(ARN.layer(call.region, call.accountId, layerName)):\(version) does not exist.")
        }
        return .json(layerVersionShape(call, layer))
    }

    func getLayerVersionByArn(_ call: Call) async throws -> APIResponse {
        guard let arn = call.queryValue("Arn") else { throw APIError.validation(value: "null", field: "arn", constraint: "Member must not be null") }
        guard let parsed = ARN.parseLayerVersion(arn) else {
            throw APIError.validation(value: arn, field: "arn", constraint: "Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+")
        }
        guard parsed.account == call.accountId,
              let layer = try await store.layerVersion(accountId: call.accountId, name: parsed.name, version: parsed.version) else {
            throw APIError.notFound("Layer version \(arn) does not exist.")
        }
        return .json(layerVersionShape(call, layer))
    }

    func listLayers(_ call: Call) async throws -> APIResponse {
        let limit = try Validate.maxItems(call.queryValue("MaxItems"), range: 1...50, default: 50)
        var layers = try await store.latestLayerVersions(accountId: call.accountId)
        if let runtime = call.queryValue("CompatibleRuntime") { layers = layers.filter { $0.compatibleRuntimes.contains(runtime) } }
        if let architecture = call.queryValue("CompatibleArchitecture") { layers = layers.filter { $0.compatibleArchitectures.contains(architecture) } }
        let start = call.queryValue("Marker").flatMap { marker in layers.firstIndex { $0.name == marker }.map { $0 + 1 } } ?? 0
        let page = Array(layers.dropFirst(start).prefix(limit))
        var response: [String: Any] = ["Layers": page.map { layer -> [String: Any] in
            ["LayerName": layer.name, "LayerArn": ARN.layer(call.region, call.accountId, layer.name),
             "LatestMatchingVersion": layerVersionListShape(call, layer)]
        }]
        if start + page.count < layers.count, let last = page.last { response["NextMarker"] = last.name }
        return .json(response)
    }

    func listLayerVersions(_ call: Call, name: String) async throws -> APIResponse {
        let layerName = try self.layerName(call, name)
        let limit = try Validate.maxItems(call.queryValue("MaxItems"), range: 1...50, default: 50)
        var versions = try await store.layerVersions(accountId: call.accountId, name: layerName)
        if let runtime = call.queryValue("CompatibleRuntime") { versions = versions.filter { $0.compatibleRuntimes.contains(runtime) } }
        let start = call.queryValue("Marker").flatMap { marker in versions.firstIndex { String($0.version) == marker }.map { $0 + 1 } } ?? 0
        let page = Array(versions.dropFirst(start).prefix(limit))
        var response: [String: Any] = ["LayerVersions": page.map { layerVersionListShape(call, $0) }]
        if start + page.count < versions.count, let last = page.last { response["NextMarker"] = String(last.version) }
        return .json(response)
    }

    func deleteLayerVersion(_ call: Call, name: String, version: String) async throws -> APIResponse {
        let layerName = try self.layerName(call, name)
        guard let number = Int(version) else {
            throw APIError.validation(value: version, field: "versionNumber", constraint: "Member must be a number")
        }
        // Idempotent, as on Lambda; functions that use the version keep their copy.
        try await mapped { try await store.deleteLayerVersion(accountId: call.accountId, name: layerName, version: number) }
        return .empty(204)
    }
}
