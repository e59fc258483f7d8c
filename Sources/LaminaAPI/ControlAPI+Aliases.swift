import Foundation
import LaminaStore

extension ControlAPI {
    func aliasShape(_ call: Call, _ alias: Alias) -> [String: Any] {
        var shape: [String: Any] = [
            "AliasArn": ARN.function(call.region, call.accountId, alias.functionName, qualifier: alias.name),
            "Name": alias.name,
            "FunctionVersion": alias.functionVersion,
            "Description": alias.description,
            "RevisionId": alias.revisionId,
        ]
        if !alias.additionalVersionWeights.isEmpty {
            shape["RoutingConfig"] = ["AdditionalVersionWeights": alias.additionalVersionWeights]
        }
        return shape
    }

    static func routing(_ body: [String: Any]) throws(APIError) -> [String: Double]? {
        guard let config = body["RoutingConfig"] else { return nil }
        guard let map = config as? [String: Any] else { throw APIError.invalidContent("Could not parse request body into json: RoutingConfig must be an object") }
        guard let weights = map["AdditionalVersionWeights"] as? [String: Any] else { return [:] }
        var result: [String: Double] = [:]
        for (version, value) in weights {
            guard Int(version) != nil, let weight = (value as? NSNumber)?.doubleValue, weight >= 0, weight <= 1 else {
                throw APIError.invalidParameter("RoutingConfig.AdditionalVersionWeights must map version numbers to weights between 0.0 and 1.0")
            }
            result[version] = weight
        }
        guard result.count <= 1 else { throw APIError.invalidParameter("Number of items in AdditionalVersionWeights cannot be greater than 1") }
        return result
    }

    func createAlias(_ call: Call, name: String) async throws -> APIResponse {
        let reference = try self.reference(call, name, qualifier: "")
        _ = try await requireFunction(call, reference)
        let body = try call.json()
        let aliasName = try Validate.string(body, "Name", required: true, maxLength: 128)!
        guard Patterns.isAliasName(aliasName) else {
            throw APIError.validation(value: aliasName, field: "name", constraint: "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)")
        }
        let version = try Validate.string(body, "FunctionVersion", required: true, maxLength: 1024)!
        let alias = Alias(accountId: call.accountId, functionName: reference.name, name: aliasName, functionVersion: version,
                          description: try Validate.string(body, "Description", maxLength: 256) ?? "",
                          additionalVersionWeights: try Self.routing(body) ?? [:], revisionId: UUID().uuidString.lowercased())
        try await mapped { try await store.createAlias(alias) }
        resolver.invalidate(accountId: call.accountId, name: reference.name)
        return .json(aliasShape(call, alias), status: 201)
    }

    func getAlias(_ call: Call, name: String, alias: String) async throws -> APIResponse {
        let reference = try self.reference(call, name, qualifier: "")
        _ = try await requireFunction(call, reference)
        guard let found = try await store.alias(accountId: call.accountId, functionName: reference.name, name: alias) else {
            throw APIError.notFound("Alias not found: \(ARN.function(call.region, call.accountId, reference.name, qualifier: alias))")
        }
        return .json(aliasShape(call, found))
    }

    func listAliases(_ call: Call, name: String) async throws -> APIResponse {
        let reference = try self.reference(call, name, qualifier: "")
        _ = try await requireFunction(call, reference)
        var aliases = try await store.aliases(accountId: call.accountId, functionName: reference.name)
        if let version = call.queryValue("FunctionVersion") { aliases = aliases.filter { $0.functionVersion == version } }
        let limit = try Validate.maxItems(call.queryValue("MaxItems"), range: 1...10_000, default: 50)
        let start = call.queryValue("Marker").flatMap { marker in aliases.firstIndex { $0.name == marker }.map { $0 + 1 } } ?? 0
        let page = Array(aliases.dropFirst(start).prefix(limit))
        var response: [String: Any] = ["Aliases": page.map { aliasShape(call, $0) }]
        if start + page.count < aliases.count, let last = page.last { response["NextMarker"] = last.name }
        return .json(response)
    }

    func updateAlias(_ call: Call, name: String, alias: String) async throws -> APIResponse {
        let reference = try self.reference(call, name, qualifier: "")
        _ = try await requireFunction(call, reference)
        let body = try call.json()
        let version = try Validate.string(body, "FunctionVersion", maxLength: 1024)
        let description = try Validate.string(body, "Description", maxLength: 256)
        let routing = try Self.routing(body)
        let updated = try await mapped {
            try await store.updateAlias(accountId: call.accountId, functionName: reference.name, name: alias,
                                        expectedRevision: body["RevisionId"] as? String) { alias in
                if let version { alias.functionVersion = version }
                if let description { alias.description = description }
                if let routing { alias.additionalVersionWeights = routing }
            }
        }
        resolver.invalidate(accountId: call.accountId, name: reference.name)
        return .json(aliasShape(call, updated))
    }

    func deleteAlias(_ call: Call, name: String, alias: String) async throws -> APIResponse {
        let reference = try self.reference(call, name, qualifier: "")
        _ = try await requireFunction(call, reference)
        try await mapped { try await store.deleteAlias(accountId: call.accountId, functionName: reference.name, name: alias) }
        resolver.invalidate(accountId: call.accountId, name: reference.name)
        return .empty(204)
    }

    // MARK: Tags

    /// The function a tag resource ARN names; only the caller's own, unqualified.
    private func taggedFunction(_ call: Call, _ arn: String) async throws -> String {
        let reference = try FunctionReference.parse(arn, qualifier: nil)
        guard reference.accountId == nil || reference.accountId == call.accountId,
              try await store.function(accountId: call.accountId, name: reference.name) != nil else {
            throw APIError.notFound("Function not found: \(arn)")
        }
        guard reference.qualifier == nil else { throw APIError.invalidParameter("Tags are supported on unqualified function ARNs only.") }
        return reference.name
    }

    func tagResource(_ call: Call, arn: String) async throws -> APIResponse {
        let name = try await taggedFunction(call, arn)
        let body = try call.json()
        guard let value = body["Tags"] else { throw APIError.validation(value: "null", field: "tags", constraint: "Member must not be null") }
        let tags = try Validate.tags(value)
        try await mapped { try await store.setTags(accountId: call.accountId, name: name, adding: tags, removing: []) }
        return .empty(204)
    }

    func untagResource(_ call: Call, arn: String) async throws -> APIResponse {
        let name = try await taggedFunction(call, arn)
        try await mapped { try await store.setTags(accountId: call.accountId, name: name, adding: [:], removing: call.queryValues("tagKeys")) }
        return .empty(204)
    }

    func listTags(_ call: Call, arn: String) async throws -> APIResponse {
        let name = try await taggedFunction(call, arn)
        let record = try await store.function(accountId: call.accountId, name: name)
        return .json(["Tags": record?.tags ?? [:]])
    }

    // MARK: Concurrency and account

    func putConcurrency(_ call: Call, name: String) async throws -> APIResponse {
        let reference = try self.reference(call, name, qualifier: "")
        _ = try await requireFunction(call, reference)
        let body = try call.json()
        guard let value = try Validate.int(body, "ReservedConcurrentExecutions") else {
            throw APIError.validation(value: "null", field: "reservedConcurrentExecutions", constraint: "Member must not be null")
        }
        guard value >= 0 else {
            throw APIError.validation(value: "\(value)", field: "reservedConcurrentExecutions", constraint: "Member must have value greater than or equal to 0")
        }
        let limit = try await accountLimit(call)
        let others = try await store.totalReservedConcurrency(accountId: call.accountId, excluding: reference.name)
        let minimum = min(configuration.minimumUnreservedConcurrency, limit)
        guard limit - others - value >= minimum else {
            throw APIError.invalidParameter("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [\(minimum)].")
        }
        try await mapped { try await store.setReservedConcurrency(accountId: call.accountId, name: reference.name, value: value) }
        resolver.invalidate(accountId: call.accountId)
        return .json(["ReservedConcurrentExecutions": value])
    }

    func getConcurrency(_ call: Call, name: String) async throws -> APIResponse {
        let reference = try self.reference(call, name, qualifier: "")
        let record = try await requireFunction(call, reference)
        guard let reserved = record.reservedConcurrency else { return .json([String: Any]()) }
        return .json(["ReservedConcurrentExecutions": reserved])
    }

    func deleteConcurrency(_ call: Call, name: String) async throws -> APIResponse {
        let reference = try self.reference(call, name, qualifier: "")
        _ = try await requireFunction(call, reference)
        try await mapped { try await store.setReservedConcurrency(accountId: call.accountId, name: reference.name, value: nil) }
        resolver.invalidate(accountId: call.accountId)
        return .empty(204)
    }

    func accountLimit(_ call: Call) async throws -> Int {
        guard let tenant = try await store.tenant(accountId: call.accountId) else { throw APIError.unrecognizedClient }
        return tenant.concurrencyLimit
    }

    func accountSettings(_ call: Call) async throws -> APIResponse {
        let limit = try await accountLimit(call)
        let reserved = try await store.totalReservedConcurrency(accountId: call.accountId, excluding: nil)
        let usage = try await store.usage(accountId: call.accountId)
        return .json([
            "AccountLimit": [
                "TotalCodeSize": 80_530_636_800, "CodeSizeUnzipped": 262_144_000, "CodeSizeZipped": configuration.maxZippedBytes,
                "ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": max(0, limit - reserved),
            ],
            "AccountUsage": ["TotalCodeSize": usage.codeSize, "FunctionCount": usage.functions],
        ])
    }
}
