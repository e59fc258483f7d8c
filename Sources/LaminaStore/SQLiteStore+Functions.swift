import Foundation
import GRDB

extension SQLiteStore: FunctionStore {
    public func createFunction(accountId: String, name: String, configuration: FunctionConfiguration, tags: [String: String],
                               publish: Bool, at date: Date) async throws -> (latest: FunctionVersion, published: FunctionVersion?) {
        try await write { db in
            if try Row.fetchOne(db, sql: "SELECT 1 FROM functions WHERE account_id = ? AND name = ?", arguments: [accountId, name]) != nil {
                throw StoreError.conflict("Function already exist: \(name)")
            }
            try db.execute(sql: "INSERT INTO functions (account_id, name, created_at, tags) VALUES (?, ?, ?, ?)",
                           arguments: [accountId, name, date.timeIntervalSince1970, try Self.json(tags)])
            let latest = FunctionVersion(accountId: accountId, functionName: name, version: "$LATEST", configuration: configuration,
                                         lastModified: date, revisionId: Self.revisionId(), versionDescription: nil)
            try Self.insertVersion(db, latest)
            let published = publish ? try Self.publish(db, latest: latest, description: nil, at: date) : nil
            return (latest, published)
        }
    }

    public func function(accountId: String, name: String) async throws -> FunctionRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM functions WHERE account_id = ? AND name = ?", arguments: [accountId, name]).map(Self.function)
        }
    }

    public func functionVersion(accountId: String, name: String, version: String) async throws -> FunctionVersion? {
        try await read { db in try Self.version(db, accountId, name, version) }
    }

    public func functions(accountId: String, after marker: String?, limit: Int) async throws -> [FunctionRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM functions WHERE account_id = ? AND name > ? ORDER BY name LIMIT ?",
                             arguments: [accountId, marker ?? "", limit]).map(Self.function)
        }
    }

    public func versions(accountId: String, name: String) async throws -> [FunctionVersion] {
        try await read { db in
            // $LATEST first, then published versions in numeric order, as Lambda lists them.
            try Row.fetchAll(db, sql: """
                SELECT * FROM function_versions WHERE account_id = ? AND function_name = ?
                ORDER BY CASE version WHEN '$LATEST' THEN -1 ELSE CAST(version AS INTEGER) END
                """, arguments: [accountId, name]).map(Self.version)
        }
    }

    public func updateLatest(accountId: String, name: String, expectedRevision: String?, at date: Date,
                             _ change: @escaping @Sendable (inout FunctionConfiguration) throws -> Void) async throws -> FunctionVersion {
        try await write { db in
            guard var latest = try Self.version(db, accountId, name, "$LATEST") else { throw Self.functionNotFound(accountId, name) }
            if let expectedRevision, expectedRevision != latest.revisionId {
                throw StoreError.preconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
            }
            try change(&latest.configuration)
            latest.lastModified = date
            latest.revisionId = Self.revisionId()
            try db.execute(sql: """
                UPDATE function_versions SET config = ?, last_modified = ?, revision_id = ?
                WHERE account_id = ? AND function_name = ? AND version = '$LATEST'
                """, arguments: [try Self.json(latest.configuration), date.timeIntervalSince1970, latest.revisionId, accountId, name])
            return latest
        }
    }

    public func publishVersion(accountId: String, name: String, expectedRevision: String?, expectedCodeSha256: String?,
                               description: String?, at date: Date) async throws -> FunctionVersion {
        try await write { db in
            guard let latest = try Self.version(db, accountId, name, "$LATEST") else { throw Self.functionNotFound(accountId, name) }
            if let expectedRevision, expectedRevision != latest.revisionId {
                throw StoreError.preconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
            }
            if let expectedCodeSha256, expectedCodeSha256 != latest.configuration.codeSha256 {
                throw StoreError.invalid("CodeSha256 (\(expectedCodeSha256)) is different from current CodeSha256 in $LATEST (\(latest.configuration.codeSha256)). Please try again with the CodeSha256 in $LATEST.")
            }
            return try Self.publish(db, latest: latest, description: description, at: date)
        }
    }

    /// Publishes $LATEST, unless the newest published version already has the same code and settings.
    static func publish(_ db: Database, latest: FunctionVersion, description: String?, at date: Date) throws -> FunctionVersion {
        let lastNumber = try Int.fetchOne(db, sql: "SELECT last_version FROM functions WHERE account_id = ? AND name = ?",
                                          arguments: [latest.accountId, latest.functionName]) ?? 0
        if lastNumber > 0, let newest = try version(db, latest.accountId, latest.functionName, String(lastNumber)),
           newest.configuration.sameCodeAndSettings(as: latest.configuration) {
            return newest
        }
        let number = lastNumber + 1
        let published = FunctionVersion(accountId: latest.accountId, functionName: latest.functionName, version: String(number),
                                        configuration: latest.configuration, lastModified: date, revisionId: revisionId(),
                                        versionDescription: description ?? latest.configuration.description)
        try insertVersion(db, published)
        try db.execute(sql: "UPDATE functions SET last_version = ? WHERE account_id = ? AND name = ?",
                       arguments: [number, latest.accountId, latest.functionName])
        return published
    }

    public func deleteFunction(accountId: String, name: String) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM functions WHERE account_id = ? AND name = ?", arguments: [accountId, name])
            guard db.changesCount == 1 else { throw Self.functionNotFound(accountId, name) }
        }
    }

    public func deleteVersion(accountId: String, name: String, version: String) async throws {
        try await write { db in
            let aliases = try String.fetchAll(db, sql: "SELECT name FROM aliases WHERE account_id = ? AND function_name = ? AND function_version = ?",
                                              arguments: [accountId, name, version])
            if !aliases.isEmpty {
                throw StoreError.conflict("Unable to delete version because the following aliases reference it: [\(aliases.joined(separator: ", "))]")
            }
            try db.execute(sql: "DELETE FROM function_versions WHERE account_id = ? AND function_name = ? AND version = ?",
                           arguments: [accountId, name, version])
        }
    }

    public func setReservedConcurrency(accountId: String, name: String, value: Int?) async throws {
        try await write { db in
            try db.execute(sql: "UPDATE functions SET reserved_concurrency = ? WHERE account_id = ? AND name = ?", arguments: [value, accountId, name])
            guard db.changesCount == 1 else { throw Self.functionNotFound(accountId, name) }
        }
    }

    public func totalReservedConcurrency(accountId: String, excluding name: String?) async throws -> Int {
        try await read { db in
            try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(reserved_concurrency), 0) FROM functions WHERE account_id = ? AND name != ?",
                             arguments: [accountId, name ?? ""]) ?? 0
        }
    }

    public func setTags(accountId: String, name: String, adding: [String: String], removing: [String]) async throws {
        try await write { db in
            guard let text = try String.fetchOne(db, sql: "SELECT tags FROM functions WHERE account_id = ? AND name = ?", arguments: [accountId, name]) else {
                throw Self.functionNotFound(accountId, name)
            }
            var tags = try Self.decode([String: String].self, text)
            tags.merge(adding) { _, new in new }
            for key in removing { tags.removeValue(forKey: key) }
            guard tags.count <= 50 else { throw StoreError.invalid("Number of tags exceeds resource tag limit.") }
            try db.execute(sql: "UPDATE functions SET tags = ? WHERE account_id = ? AND name = ?", arguments: [try Self.json(tags), accountId, name])
        }
    }

    public func createAlias(_ alias: Alias) async throws {
        try await write { db in
            guard try Self.version(db, alias.accountId, alias.functionName, alias.functionVersion) != nil else {
                throw StoreError.notFound("Function not found: \(alias.functionName):\(alias.functionVersion)")
            }
            if try Row.fetchOne(db, sql: "SELECT 1 FROM aliases WHERE account_id = ? AND function_name = ? AND name = ?",
                                arguments: [alias.accountId, alias.functionName, alias.name]) != nil {
                throw StoreError.conflict("Alias already exists: \(alias.name)")
            }
            try Self.insertAlias(db, alias)
        }
    }

    public func alias(accountId: String, functionName: String, name: String) async throws -> Alias? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM aliases WHERE account_id = ? AND function_name = ? AND name = ?",
                             arguments: [accountId, functionName, name]).map(Self.alias)
        }
    }

    public func aliases(accountId: String, functionName: String) async throws -> [Alias] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM aliases WHERE account_id = ? AND function_name = ? ORDER BY name",
                             arguments: [accountId, functionName]).map(Self.alias)
        }
    }

    public func updateAlias(accountId: String, functionName: String, name: String, expectedRevision: String?,
                            _ change: @escaping @Sendable (inout Alias) throws -> Void) async throws -> Alias {
        try await write { db in
            guard var alias = try Row.fetchOne(db, sql: "SELECT * FROM aliases WHERE account_id = ? AND function_name = ? AND name = ?",
                                               arguments: [accountId, functionName, name]).map(Self.alias) else {
                throw StoreError.notFound("Alias not found: \(name)")
            }
            if let expectedRevision, expectedRevision != alias.revisionId {
                throw StoreError.preconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
            }
            try change(&alias)
            guard try Self.version(db, accountId, functionName, alias.functionVersion) != nil else {
                throw StoreError.notFound("Function not found: \(functionName):\(alias.functionVersion)")
            }
            alias.revisionId = Self.revisionId()
            try db.execute(sql: "DELETE FROM aliases WHERE account_id = ? AND function_name = ? AND name = ?", arguments: [accountId, functionName, name])
            try Self.insertAlias(db, alias)
            return alias
        }
    }

    public func deleteAlias(accountId: String, functionName: String, name: String) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM aliases WHERE account_id = ? AND function_name = ? AND name = ?", arguments: [accountId, functionName, name])
        }
    }

    public func usage(accountId: String) async throws -> (functions: Int, codeSize: Int64) {
        try await read { db in
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM functions WHERE account_id = ?", arguments: [accountId]) ?? 0
            var size: Int64 = 0
            for text in try String.fetchAll(db, sql: "SELECT config FROM function_versions WHERE account_id = ?", arguments: [accountId]) {
                size += (try? Self.decode(FunctionConfiguration.self, text).codeSize) ?? 0
            }
            size += try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(code_size), 0) FROM layer_versions WHERE account_id = ?", arguments: [accountId]) ?? 0
            return (count, size)
        }
    }

    public func referencedDigests() async throws -> Set<String> {
        try await read { db in
            var digests = Set<String>()
            for text in try String.fetchAll(db, sql: "SELECT config FROM function_versions") {
                guard let configuration = try? Self.decode(FunctionConfiguration.self, text) else { continue }
                digests.insert(configuration.codeDigest)
                for layer in configuration.layers { digests.insert(layer.digest) }
            }
            digests.formUnion(try String.fetchAll(db, sql: "SELECT code_digest FROM layer_versions"))
            return digests
        }
    }

    // MARK: Rows

    static func functionNotFound(_ accountId: String, _ name: String) -> StoreError {
        .notFound("Function not found: \(name)")
    }

    static func insertVersion(_ db: Database, _ version: FunctionVersion) throws {
        try db.execute(sql: """
            INSERT INTO function_versions (account_id, function_name, version, config, last_modified, revision_id, version_description)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [version.accountId, version.functionName, version.version, try json(version.configuration),
                             version.lastModified.timeIntervalSince1970, version.revisionId, version.versionDescription])
    }

    static func version(_ db: Database, _ accountId: String, _ name: String, _ version: String) throws -> FunctionVersion? {
        try Row.fetchOne(db, sql: "SELECT * FROM function_versions WHERE account_id = ? AND function_name = ? AND version = ?",
                         arguments: [accountId, name, version]).map(Self.version)
    }

    static func version(_ row: Row) throws -> FunctionVersion {
        FunctionVersion(accountId: row["account_id"], functionName: row["function_name"], version: row["version"],
                        configuration: try decode(FunctionConfiguration.self, row["config"]),
                        lastModified: Date(timeIntervalSince1970: row["last_modified"]), revisionId: row["revision_id"],
                        versionDescription: row["version_description"])
    }

    static func function(_ row: Row) throws -> FunctionRecord {
        FunctionRecord(accountId: row["account_id"], name: row["name"], createdAt: Date(timeIntervalSince1970: row["created_at"]),
                       reservedConcurrency: row["reserved_concurrency"], tags: try decode([String: String].self, row["tags"]),
                       lastVersion: row["last_version"])
    }

    static func insertAlias(_ db: Database, _ alias: Alias) throws {
        try db.execute(sql: """
            INSERT INTO aliases (account_id, function_name, name, function_version, description, routing, revision_id)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [alias.accountId, alias.functionName, alias.name, alias.functionVersion, alias.description,
                             try json(alias.additionalVersionWeights), alias.revisionId])
    }

    static func alias(_ row: Row) throws -> Alias {
        Alias(accountId: row["account_id"], functionName: row["function_name"], name: row["name"], functionVersion: row["function_version"],
              description: row["description"], additionalVersionWeights: try decode([String: Double].self, row["routing"]),
              revisionId: row["revision_id"])
    }
}
